"""`GET /api/v1/cluster` (admins): the nodes, who owns which partition, and the backlog."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from web.auth.guards import require_role
from web.typedefs import cluster_key


@require_role("admin")
async def get_cluster(request: web.Request) -> web.Response:
    node = request.app.get(cluster_key)
    if node is None:
        return web.json_response({"enabled": False})
    redis = node.redis
    now_ms = int(time.time() * 1000)
    heartbeats = await redis.node_heartbeats()
    leases = await redis.leases(node.partitions)
    lags = await redis.lag(node.partitions)
    owns: dict[str, list[int]] = {name: [] for name in heartbeats}
    partitions: list[dict[str, Any]] = []
    for partition, (lease, lag) in enumerate(zip(leases, lags, strict=True)):
        if lease is not None:
            owns.setdefault(lease.node, []).append(partition)
        partitions.append(
            {
                "partition": partition,
                "owner": lease.node if lease else None,
                "fencing_token": lease.token if lease else None,
                "lease_expires_in_ms": lease.expires_in_ms if lease else None,
                "lag": lag,
            }
        )
    body = {
        "enabled": True,
        "node_id": node.node_id,
        "partitions": node.partitions,
        "lease_ms": node.lease_ms,
        "holds_its_share": node.holds_its_share,
        "nodes": [
            {
                "node_id": name,
                "heartbeat_age_ms": max(0, now_ms - beat),
                "live": now_ms - beat <= node.lease_ms,
                "partitions": owns.get(name, []),
            }
            for name, beat in sorted(heartbeats.items())
        ],
        "partition_owners": partitions,
    }
    return web.json_response(body)
