-- Locks on SOVD entities (SPEC "SOVD surface"): a client's lock on a vehicle or on one of its
-- components, here so that every server process sees it. A lock past `expires_at` is as if it
-- did not exist; acquiring the entity again replaces its row, so there is one row per entity.
CREATE TABLE sovd_locks (
    vehicle_id  uuid NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    entity      text NOT NULL CHECK (entity = 'vehicle' OR entity ~ '^components/[a-z0-9-]+$'),
    lock_id     uuid NOT NULL UNIQUE,
    owner_id    uuid NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, entity)
);
