"""Locks on SOVD entities: what a lock is on (the vehicle or one component), and the check
every state-changing handler makes before it runs its command."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from actors.actor import VehicleActor
from db.repositories import SovdLock
from sovd.entities import Component
from sovd.records import utc_now
from web.auth.guards import current_user
from web.sovd_api.common import base_uri, component_uri
from web.sovd_api.errors import SovdApiError
from web.typedefs import store_key

VEHICLE_ENTITY = "vehicle"


def entity_key(component: Component | None) -> str:
    """How the store names the locked entity: the whole vehicle, or one component."""
    return VEHICLE_ENTITY if component is None else f"components/{component.id}"


def entity_uri(request: web.Request, vehicle: VehicleActor, component: Component | None) -> str:
    if component is None:
        return base_uri(request, vehicle)
    return component_uri(request, vehicle, component)


def expiration_stamp(moment: datetime) -> str:
    """`2026-05-03T18:05:00Z`: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_conflict(message: str, locked_entity: str) -> SovdApiError:
    return SovdApiError(
        409, "precondition-not-fulfilled", message, parameters={"locked_entity": locked_entity}
    )


async def ensure_unlocked(
    request: web.Request, vehicle: VehicleActor, component: Component
) -> None:
    """Raises 409 precondition-not-fulfilled while another user holds an unexpired lock on
    the component or on its whole vehicle."""
    user = current_user(request)
    held = await request.app[store_key].locks.held(
        vehicle.vehicle_id, (entity_key(component), VEHICLE_ENTITY), utc_now()
    )
    foreign = [lock for lock in held if lock.owner_id != user.user_id]
    if foreign:
        raise _locked_by_another(request, vehicle, component, foreign[0])


def _locked_by_another(
    request: web.Request, vehicle: VehicleActor, component: Component, lock: SovdLock
) -> SovdApiError:
    whole_vehicle = lock.entity == VEHICLE_ENTITY
    what = "The vehicle" if whole_vehicle else f"Component {component.id}"
    return lock_conflict(
        f"{what} is locked by another user until {expiration_stamp(lock.expires_at)}.",
        entity_uri(request, vehicle, None if whole_vehicle else component),
    )
