"""The dashboard's page and static files, and the statistics it charts (`/api/v1/stats`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from sovd.records import utc_now
from web.typedefs import actors_key, command_stats_key, fleet_service_key, open_websockets_key

STATIC_DIR = (Path(__file__).parent / "static").resolve()
INDEX = STATIC_DIR / "index.html"
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_PLAIN_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
# Every file may be replaced by an upgrade: browsers revalidate (ETag) before using a copy.
STATIC_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def content_security_policy(request: web.Request) -> str:
    """Scripts and styles from this origin only, no inline code; WebSockets to this host."""
    connect = "'self'"
    if _PLAIN_HOST.match(request.host):
        connect += f" ws://{request.host} wss://{request.host}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {connect}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


async def index(request: web.Request) -> web.FileResponse:
    headers = STATIC_HEADERS | {
        "Content-Security-Policy": content_security_policy(request),
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Type": CONTENT_TYPES[".html"],
    }
    return web.FileResponse(INDEX, headers=headers)


async def to_index(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/dashboard/")


async def static_file(request: web.Request) -> web.FileResponse:
    """A file of the dashboard's static folder, with a type we know; 404 otherwise."""
    return _served(STATIC_DIR / request.match_info["name"])


async def script_file(request: web.Request) -> web.FileResponse:
    """One of the page's JavaScript modules."""
    return _served(STATIC_DIR / "js" / request.match_info["name"])


def _served(wanted: Path) -> web.FileResponse:
    path = wanted.resolve()
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=STATIC_HEADERS | {"Content-Type": content_type})


async def fleet_stats(request: web.Request) -> web.Response:
    """What the dashboard charts, for any signed-in role: the last minutes of commands
    second by second, the actors' load and the fleets by connectivity."""
    app = request.app
    actors = app[actors_key]
    fleets: list[dict[str, Any]] = [
        {
            "name": fleet.spec.name,
            "profile": fleet.spec.profile.name,
            "make": fleet.spec.profile.make,
            "model": fleet.spec.profile.model,
            "count": fleet.spec.count,
            "origin": fleet.origin,
            "vehicles_by_connection": fleet.connections,
        }
        for fleet in app[fleet_service_key].running()
    ]
    body = {
        "generated_at": utc_now(),
        "commands": app[command_stats_key].snapshot(),
        "actors": {
            "vehicles": len(actors),
            "active": actors.active_count,
            "busy": actors.busy_count,
            "mailbox_depth": actors.queued_count,
        },
        "fleets": fleets,
        "websockets": len(app[open_websockets_key]),
    }
    return web.Response(
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
