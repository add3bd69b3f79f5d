"""Cyclic subscriptions of a component's data resources: a client subscribes, then reads a
Server-Sent Events stream with one value per interval, each read a ReadDataByID command.

Subscriptions live in the memory of the process that took them (see
`web.sovd_api.subscription_registry`): a client must open the stream on the same process."""

from __future__ import annotations

import asyncio
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import orjson
import structlog
from aiohttp import web

from actors.actor import VehicleActor
from sovd.dids import DidInfo
from sovd.entities import Component
from sovd.records import new_id, utc_now
from web.auth.guards import current_user
from web.auth.tokens import AuthenticatedUser
from web.problems import problem_for
from web.sovd_api.common import (
    check_query,
    component_of,
    component_uri,
    entities,
    read_body,
    respond,
    vehicle_of,
)
from web.sovd_api.data import DATA_VALUE, find_data, read_value
from web.sovd_api.errors import (
    SovdApiError,
    from_problem,
    invalid_request,
    resource_not_found,
    vendor_error,
)
from web.sovd_api.schemas import GENERIC_ERROR, LINK, STAMP, STRING, items_of, obj
from web.sovd_api.subscription_registry import (
    INTERVALS_S,
    CyclicSubscription,
    SubscriptionLimitReached,
)
from web.typedefs import command_ids_key, subscriptions_key

log = structlog.get_logger(__name__)

MAX_DURATION_S = 3600
PROTOCOL = "sse"
# A comment line goes out when nothing else has for this long, so proxies keep the stream.
KEEPALIVE_S = 15.0
KEEPALIVE = b":keepalive\n\n"
_DATA_PATH = re.compile(
    r"^/vehicles/(?P<vehicle>[^/]+)/sovd/v1/components/(?P<component>[^/]+)/data/(?P<data>[^/]+)$"
)
_RELATIVE_DATA = re.compile(r"^data/(?P<data>[^/]+)$")

SUBSCRIPTION = obj(
    {
        "id": STRING,
        "observed_resource": LINK,
        "event_source": LINK,
        "protocol": {"enum": [PROTOCOL]},
        "interval": {"enum": list(INTERVALS_S)},
        "expires": STAMP,
    },
    ("id", "observed_resource", "event_source", "protocol", "interval", "expires"),
)
SUBSCRIPTION_LIST = items_of(SUBSCRIPTION)
SUBSCRIPTION_REQUEST = obj(
    {
        "resource": {"type": "string", "minLength": 1},
        "interval": {"enum": list(INTERVALS_S)},
        "duration": {"type": "integer", "minimum": 1, "maximum": MAX_DURATION_S},
        "protocol": {"enum": [PROTOCOL]},
    },
    ("resource", "interval", "duration"),
)
# The `data:` of one event of the stream: a value as GET .../data/{data_id} answers it, or
# why this read failed.
SUBSCRIPTION_EVENT = {
    "oneOf": [
        obj({"timestamp": STAMP, "payload": DATA_VALUE}, ("timestamp", "payload")),
        obj({"timestamp": STAMP, "error": GENERIC_ERROR}, ("timestamp", "error")),
    ]
}


def _stamp(moment: datetime) -> str:
    """`2026-05-03T18:00:00.250Z`: UTC, milliseconds."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _collection_uri(request: web.Request, vehicle: VehicleActor, component: Component) -> str:
    return f"{component_uri(request, vehicle, component)}/cyclic-subscriptions"


def _describe(
    request: web.Request,
    vehicle: VehicleActor,
    component: Component,
    subscription: CyclicSubscription,
) -> dict[str, Any]:
    here = f"{_collection_uri(request, vehicle, component)}/{subscription.subscription_id}"
    return {
        "id": subscription.subscription_id,
        "observed_resource": f"{component_uri(request, vehicle, component)}/data/"
        f"{subscription.data_key}",
        "event_source": f"{here}/events",
        "protocol": PROTOCOL,
        "interval": subscription.interval,
        "expires": _stamp(subscription.expires_at),
    }


def _observed_data(
    request: web.Request, vehicle: VehicleActor, component: Component, resource: Any
) -> DidInfo:
    """The data resource `resource` names: `data/<id>`, or the absolute path or URL of one
    of this component's data resources."""
    if not isinstance(resource, str) or not resource:
        raise invalid_request("resource", "is required, as a string")
    refused = invalid_request(
        "resource", "must name a data resource of this component, e.g. data/<id>"
    )
    parts = urlsplit(resource)
    absolute = bool(parts.scheme or parts.netloc)
    on_this_server = parts.scheme.lower() in ("http", "https") and (
        parts.netloc.lower() == request.host.lower()
    )
    if parts.query or parts.fragment or (absolute and not on_this_server):
        raise refused
    match = _DATA_PATH.match(parts.path) or _RELATIVE_DATA.match(parts.path)
    if match is None:
        raise refused
    if "vehicle" in match.groupdict():
        try:
            same_vehicle = UUID(match["vehicle"]) == vehicle.vehicle_id
        except ValueError:
            same_vehicle = False
        if not same_vehicle or entities(vehicle).component(match["component"]) != component:
            raise refused
    try:
        return find_data(component, match["data"])
    except SovdApiError:
        raise invalid_request(
            "resource", f"this component has no data resource {match['data']!r}"
        ) from None


def _member(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise invalid_request(name, "is required")
    return body[name]


def _duration_s(body: dict[str, Any]) -> int:
    duration = _member(body, "duration")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise invalid_request("duration", "must be a whole number of seconds")
    if not 1 <= duration <= MAX_DURATION_S:
        raise invalid_request("duration", f"must be between 1 and {MAX_DURATION_S} seconds")
    return duration


def _limit_error(exc: SubscriptionLimitReached) -> SovdApiError:
    retry_after = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    if exc.per_user:
        return vendor_error(429, "too-many-subscriptions", str(exc), headers=retry_after)
    return vendor_error(503, "subscriptions-exhausted", str(exc), headers=retry_after)


async def create_subscription(request: web.Request) -> web.Response:
    """201 with the subscription; its `event_source` streams the values."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    body = await read_body(request, ("resource", "interval", "duration", "protocol"))
    info = _observed_data(request, vehicle, component, _member(body, "resource"))
    interval = _member(body, "interval")
    if not isinstance(interval, str) or interval not in INTERVALS_S:
        raise invalid_request("interval", f"must be one of {', '.join(INTERVALS_S)}")
    duration = _duration_s(body)
    if body.get("protocol", PROTOCOL) != PROTOCOL:
        raise invalid_request("protocol", f"only {PROTOCOL!r} is supported")
    user = current_user(request)
    subscription = CyclicSubscription(
        subscription_id=str(new_id()),
        vehicle_id=vehicle.vehicle_id,
        component_id=component.id,
        data_key=info.key,
        owner_id=user.user_id,
        interval=interval,
        expires_at=utc_now() + timedelta(seconds=duration),
        deadline=asyncio.get_running_loop().time() + duration,
    )
    try:
        request.app[subscriptions_key].add(subscription)
    except SubscriptionLimitReached as exc:
        raise _limit_error(exc) from None
    log.info(
        "sovd_subscription_created",
        subscription_id=subscription.subscription_id,
        vehicle_id=str(vehicle.vehicle_id),
        resource=f"components/{component.id}/data/{info.key}",
        interval=interval,
        duration_s=duration,
    )
    described = _describe(request, vehicle, component, subscription)
    location = f"{_collection_uri(request, vehicle, component)}/{subscription.subscription_id}"
    return respond(request, described, status=201, headers={"Location": location})


async def list_subscriptions(request: web.Request) -> web.Response:
    """The caller's subscriptions of this component."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    owned = request.app[subscriptions_key].owned_by(
        current_user(request).user_id, vehicle.vehicle_id, component.id
    )
    items = [_describe(request, vehicle, component, s) for s in owned]
    return respond(request, {"items": items}, SUBSCRIPTION_LIST)


def _visible_to(user: AuthenticatedUser, subscription: CyclicSubscription) -> bool:
    return subscription.owner_id == user.user_id or user.is_admin


def _subscription_of(
    request: web.Request, vehicle: VehicleActor, component: Component
) -> CyclicSubscription:
    """The live subscription the path names, if the caller may see it; 404 otherwise."""
    ident = request.match_info["subscription_id"]
    subscription = request.app[subscriptions_key].get(ident)
    if (
        subscription is None
        or subscription.vehicle_id != vehicle.vehicle_id
        or subscription.component_id != component.id
        or not _visible_to(current_user(request), subscription)
    ):
        raise resource_not_found(f"cyclic subscription {ident!r}")
    return subscription


async def get_subscription(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    subscription = _subscription_of(request, vehicle, component)
    return respond(request, _describe(request, vehicle, component, subscription), SUBSCRIPTION)


async def delete_subscription(request: web.Request) -> web.Response:
    """Ends the subscription and its stream."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    subscription = _subscription_of(request, vehicle, component)
    request.app[subscriptions_key].remove(subscription.subscription_id)
    log.info("sovd_subscription_deleted", subscription_id=subscription.subscription_id)
    return web.Response(status=204)


async def stream_events(request: web.Request) -> web.StreamResponse:
    """`text/event-stream`: one `data:` event per interval until the subscription ends,
    expires or a newer stream of it takes over. Also takes `?token=` (see web.auth.guards)."""
    check_query(request, ("token",))
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    subscription = _subscription_of(request, vehicle, component)
    info = find_data(component, subscription.data_key)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        async with subscription.streaming() as replaced:
            sampler = _Sampler(request, response, vehicle, component, info)
            await sampler.run(subscription, replaced)
        await response.write_eof()
    except ConnectionResetError:
        log.info("sovd_subscription_stream_left", subscription_id=subscription.subscription_id)
    except Exception:
        # The answer has started: nothing but ending it can be said to the client.
        log.exception(
            "sovd_subscription_stream_failed", subscription_id=subscription.subscription_id
        )
    return response


class _Sampler:
    """Reads the resource once per interval and sends each value as one event."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        vehicle: VehicleActor,
        component: Component,
        info: DidInfo,
    ) -> None:
        self.request = request
        self.response = response
        self.vehicle = vehicle
        self.component = component
        self.info = info
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()

    async def run(self, subscription: CyclicSubscription, replaced: asyncio.Event) -> None:
        stopped = asyncio.ensure_future(_first_set(subscription.ended, replaced))
        next_read = self.loop.time()
        try:
            while not stopped.done():
                now = self.loop.time()
                if now >= subscription.deadline:
                    return
                if now < next_read:
                    wake = min(next_read, subscription.deadline)
                    await asyncio.wait({stopped}, timeout=wake - now)
                    continue
                # The interval spaces the starts of two reads; a slow read delays the next.
                next_read = now + subscription.period_s
                event = await self._read_with_keepalive(utc_now())
                if stopped.done():
                    return
                await self._send(event)
        finally:
            stopped.cancel()

    async def _read_with_keepalive(self, started: datetime) -> bytes:
        """Waits for the read in flight, however long the vehicle takes, and keeps the
        stream alive meanwhile."""
        read = asyncio.ensure_future(self._read(started))
        try:
            while True:
                quiet_for = self.loop.time() - self.last_sent
                await asyncio.wait({read}, timeout=max(0.0, KEEPALIVE_S - quiet_for))
                if read.done():
                    return read.result()
                await self._send(KEEPALIVE)
        except asyncio.CancelledError:
            read.cancel()
            raise
        except Exception:
            # Even a stream that broke lets its read end first: one read in flight at most.
            await asyncio.wait({read})
            raise

    async def _read(self, started: datetime) -> bytes:
        timestamp = _stamp(started)
        event: dict[str, Any]
        try:
            value = await read_value(self.request, self.vehicle, self.component, self.info)
            event = {"timestamp": timestamp, "payload": value}
        except SovdApiError as exc:
            event = {"timestamp": timestamp, "error": exc.body()}
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None:
                raise
            event = {"timestamp": timestamp, "error": from_problem(problem).body()}
        finally:
            # The answer's headers went out before the first read: no X-Command-ID to gather.
            self.request.pop(command_ids_key, None)
        return b"data: " + orjson.dumps(event) + b"\n\n"

    async def _send(self, chunk: bytes) -> None:
        await self.response.write(chunk)
        self.last_sent = self.loop.time()


async def _first_set(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def end_subscription_streams(app: web.Application) -> None:
    """on_shutdown: every stream ends after its read in flight, instead of holding the
    shutdown up until its subscription expires."""
    app[subscriptions_key].end_all()
