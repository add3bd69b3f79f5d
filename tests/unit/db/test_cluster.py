"""Cluster key names: a partition's keys share one Redis Cluster slot, and a prefix keeps
clusters sharing one Redis database apart."""

from __future__ import annotations

import re

from db.cluster import fence_key, lease_key, nodes_key, partition_count_key, stream_key


def hash_tag(key: str) -> str:
    match = re.search(r"\{([^}]+)\}", key)
    assert match is not None, key
    return match.group(1)


def test_a_partitions_keys_share_one_hash_tag_and_partitions_differ() -> None:
    assert hash_tag(lease_key(7)) == hash_tag(fence_key(7)) == hash_tag(stream_key(7)) == "p7"
    assert hash_tag(lease_key(17)) == "p17"


def test_the_default_keys_are_those_running_clusters_use() -> None:
    assert [nodes_key(), partition_count_key(), lease_key(3), fence_key(3), stream_key(3)] == [
        "sovd:cluster:nodes",
        "sovd:cluster:partitions",
        "sovd:{p3}:lease",
        "sovd:{p3}:fence",
        "sovd:{p3}:commands",
    ]


def test_a_prefix_moves_every_key() -> None:
    keys = [nodes_key("x"), partition_count_key("x"), lease_key(3, "x"), stream_key(3, "x")]
    assert all(key.startswith("x:") for key in keys)
