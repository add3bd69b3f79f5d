-- Cluster mode (SPEC §7): the fencing token of each partition's current owner. A node writes
-- the results of a partition's commands only while its token is the one recorded here, so an
-- owner that lost its lease (paused past it, say) cannot write after the next one took over.
CREATE TABLE cluster_fences (
    partition  integer PRIMARY KEY,
    fence      bigint NOT NULL
);
