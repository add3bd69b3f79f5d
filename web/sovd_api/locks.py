"""The locks collection of a vehicle's root and of each component: acquire, look at, extend
and release. A lock belongs to the signed-in user and ends by itself at its expiration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web

from actors.actor import VehicleActor
from db.repositories import SovdLock
from sovd.entities import Component
from sovd.records import new_id, utc_now
from web.auth.guards import current_user, require_role
from web.auth.tokens import AuthenticatedUser
from web.sovd_api.common import check_query, component_of, read_body, respond, vehicle_of
from web.sovd_api.errors import SovdApiError, invalid_request, resource_not_found
from web.sovd_api.locking import entity_key, entity_uri, expiration_stamp, lock_conflict
from web.sovd_api.schemas import BOOLEAN, STAMP, STRING, items_of, obj
from web.typedefs import store_key

log = structlog.get_logger(__name__)

MAX_LOCK_EXPIRATION_S = 3600

LOCK = obj(
    {"id": STRING, "owned": BOOLEAN, "lock_expiration": STAMP},
    ("id", "owned", "lock_expiration"),
)
LOCK_LIST = items_of(LOCK)
LOCK_EXPIRATION = {"type": "integer", "minimum": 1, "maximum": MAX_LOCK_EXPIRATION_S}
LOCK_REQUEST = obj(
    {"lock_expiration": LOCK_EXPIRATION, "break_lock": BOOLEAN}, ("lock_expiration",)
)
LOCK_EXTENSION = obj({"lock_expiration": LOCK_EXPIRATION}, ("lock_expiration",))


def _locked_entity(request: web.Request) -> tuple[VehicleActor, Component | None]:
    """The vehicle, and the component when the path names one (else the vehicle's root)."""
    vehicle = vehicle_of(request)
    if "component_id" not in request.match_info:
        return vehicle, None
    return vehicle, component_of(request, vehicle)


def _describe(lock: SovdLock, user: AuthenticatedUser) -> dict[str, Any]:
    return {
        "id": str(lock.lock_id),
        "owned": lock.owner_id == user.user_id,
        "lock_expiration": expiration_stamp(lock.expires_at),
    }


def _lock_expiration(body: dict[str, Any]) -> timedelta:
    seconds = body.get("lock_expiration")
    if seconds is None:
        raise invalid_request("lock_expiration", "is required")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise invalid_request("lock_expiration", "must be a whole number of seconds")
    if not 1 <= seconds <= MAX_LOCK_EXPIRATION_S:
        raise invalid_request(
            "lock_expiration", f"must be between 1 and {MAX_LOCK_EXPIRATION_S} seconds"
        )
    return timedelta(seconds=seconds)


async def _find_lock(
    request: web.Request, vehicle: VehicleActor, component: Component | None
) -> SovdLock:
    """The unexpired lock the path names, on the entity the path names; 404 otherwise."""
    ident = request.match_info["lock_id"]
    try:
        lock_id = UUID(ident)
    except ValueError:
        lock_id = None
    lock = None
    if lock_id is not None:
        lock = await request.app[store_key].locks.get(vehicle.vehicle_id, lock_id, utc_now())
    if lock is None or lock.entity != entity_key(component):
        raise resource_not_found(f"lock {ident!r}")
    return lock


def _not_owner(
    request: web.Request, vehicle: VehicleActor, component: Component | None
) -> SovdApiError:
    return SovdApiError(
        409,
        "insufficient-access-rights",
        "This lock is held by another user.",
        parameters={"locked_entity": entity_uri(request, vehicle, component)},
    )


async def list_locks(request: web.Request) -> web.Response:
    check_query(request)
    vehicle, component = _locked_entity(request)
    user = current_user(request)
    held = await request.app[store_key].locks.held(
        vehicle.vehicle_id, (entity_key(component),), utc_now()
    )
    items = [_describe(lock, user) for lock in held]
    return respond(request, {"items": items}, LOCK_LIST)


async def get_lock(request: web.Request) -> web.Response:
    check_query(request)
    vehicle, component = _locked_entity(request)
    lock = await _find_lock(request, vehicle, component)
    return respond(request, _describe(lock, current_user(request)), LOCK)


@require_role("engineer", "admin")
async def acquire_lock(request: web.Request) -> web.Response:
    """201 with the lock; the caller's own lock is extended. Another user's unexpired lock
    answers 409, unless an admin asks to break it."""
    check_query(request)
    vehicle, component = _locked_entity(request)
    body = await read_body(request, ("lock_expiration", "break_lock"))
    lasts = _lock_expiration(body)
    break_lock = body.get("break_lock", False)
    if not isinstance(break_lock, bool):
        raise invalid_request("break_lock", "must be true or false")
    user = current_user(request)
    now = utc_now()
    entity = entity_key(component)
    wanted = SovdLock(new_id(), vehicle.vehicle_id, entity, user.user_id, now + lasts)
    lock = await request.app[store_key].locks.acquire(
        wanted, now, break_lock=break_lock and user.is_admin
    )
    if lock is None:
        only_admins = " Only an admin may break it." if break_lock else ""
        raise lock_conflict(
            f"Another user holds a lock on this entity.{only_admins}",
            entity_uri(request, vehicle, component),
        )
    log.info(
        "sovd_lock_acquired",
        vehicle_id=str(vehicle.vehicle_id),
        entity=lock.entity,
        lock_id=str(lock.lock_id),
        break_lock=break_lock,
    )
    location = f"{entity_uri(request, vehicle, component)}/locks/{lock.lock_id}"
    return respond(request, _describe(lock, user), status=201, headers={"Location": location})


@require_role("engineer", "admin")
async def extend_lock(request: web.Request) -> web.Response:
    """The owner's lock now lasts `lock_expiration` seconds from now."""
    check_query(request)
    vehicle, component = _locked_entity(request)
    lasts = _lock_expiration(await read_body(request, ("lock_expiration",)))
    lock = await _find_lock(request, vehicle, component)
    user = current_user(request)
    if lock.owner_id != user.user_id:
        raise _not_owner(request, vehicle, component)
    now = utc_now()
    extended = await request.app[store_key].locks.extend(
        vehicle.vehicle_id, lock.lock_id, user.user_id, now + lasts, now
    )
    if not extended:
        raise resource_not_found(f"lock {str(lock.lock_id)!r}")
    return web.Response(status=204)


@require_role("engineer", "admin")
async def release_lock(request: web.Request) -> web.Response:
    """The owner releases its lock; an admin may release anyone's."""
    check_query(request)
    vehicle, component = _locked_entity(request)
    lock = await _find_lock(request, vehicle, component)
    user = current_user(request)
    if lock.owner_id != user.user_id and not user.is_admin:
        raise _not_owner(request, vehicle, component)
    released = await request.app[store_key].locks.release(
        vehicle.vehicle_id, lock.lock_id, utc_now(), None if user.is_admin else user.user_id
    )
    if not released:
        raise resource_not_found(f"lock {str(lock.lock_id)!r}")
    log.info(
        "sovd_lock_released",
        vehicle_id=str(vehicle.vehicle_id),
        entity=lock.entity,
        lock_id=str(lock.lock_id),
    )
    return web.Response(status=204)
