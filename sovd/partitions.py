"""How a cluster shares a fleet: each vehicle belongs to one of a fixed number of partitions,
and each partition to one live node.

`partition_of` must be the same in every process and in SQL (see PARTITION_SQL), so it uses
the low 32 bits of the vehicle id, which are random for every id sovd-sim makes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID

# `partition_of` in SQL, for a `vehicle_id` column; `{count}` is the partition count (a
# literal or a parameter such as "$1"). The last 8 hex digits are the low 32 bits, read as an
# unsigned number: bit(32)::bigint, unlike ::int, never goes negative.
PARTITION_SQL = "(('x' || right(replace(vehicle_id::text, '-', ''), 8))::bit(32)::bigint % {count})"


def partition_of(vehicle_id: UUID, partitions: int) -> int:
    return (vehicle_id.int & 0xFFFFFFFF) % partitions


def _weight(node: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{node}/{partition}".encode(), digest_size=8).digest()


def _ranked(nodes: Sequence[str], partition: int) -> list[str]:
    return sorted(nodes, key=lambda node: _weight(node, partition), reverse=True)


def assign(partitions: int, nodes: Sequence[str]) -> dict[int, str]:
    """Which node owns each partition: as even as can be (no node holds more than one
    partition above another), and when a node joins or leaves, few partitions move.

    Each partition ranks the nodes by a hash of (node, partition) (rendezvous hashing) and
    goes to the highest-ranked node that still has room; the same nodes always give the same
    answer, so every node computes it alone."""
    live = sorted(set(nodes))
    if not live:
        return {}
    room = {node: partitions // len(live) for node in live}
    for node in live[: partitions % len(live)]:
        room[node] += 1
    owners: dict[int, str] = {}
    for partition in range(partitions):
        for node in _ranked(live, partition):
            if room[node] > 0:
                room[node] -= 1
                owners[partition] = node
                break
    return owners
