"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.typedefs import bus_key, cluster_key, lifecycle_key, registry_key, store_key

READINESS_TIMEOUT_S = 2.0


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(probe: Callable[[], Awaitable[None]]) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            await probe()
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"unavailable: {exc}"
    return "ok"


async def ready(request: web.Request) -> web.Response:
    app = request.app
    store, bus = app[store_key], app[bus_key]
    store_state, bus_state = await asyncio.gather(_check(store.ping), _check(bus.ping))
    draining = app[lifecycle_key].draining
    is_ready = store_state == bus_state == "ok" and not draining
    body: dict[str, Any] = {
        "status": "ready" if is_ready else ("draining" if draining else "not_ready"),
        "checks": {
            "store": {"kind": store.kind, "status": store_state},
            "bus": {"kind": bus.kind, "status": bus_state},
        },
    }
    node = app.get(cluster_key)
    if node is not None:
        # Any node takes requests for any vehicle; this says whether it runs its share yet.
        body["cluster"] = {
            "node_id": node.node_id,
            "holds_its_share": node.holds_its_share,
            "owned": len(node.owned),
            "desired": len(node.desired),
        }
    return web.json_response(body, status=200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[registry_key]))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
