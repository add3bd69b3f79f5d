"""What a test gets from the `sovd_sim` fixture: a signed-in client of the simulator with
helpers to submit, await and stream commands, and to change the simulated vehicles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

import aiohttp

T = TypeVar("T")
VehicleRef = str | UUID | Mapping[str, Any]
LIST_PAGE = 500
LOOP_MISMATCH = (
    "the sovd_sim fixture was set up on another event loop than the one this test runs on; "
    "give async fixtures and tests the same loop scope (pytest-asyncio's "
    "asyncio_default_fixture_loop_scope and asyncio_default_test_loop_scope)"
)


class ApiError(Exception):
    """The server answered a helper's request with an error (an RFC 9457 problem)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        detail = body.get("detail") if isinstance(body, dict) else None
        super().__init__(f"{method} {path}: {status} {detail or body}")
        self.status = status
        self.body = body


class StreamError(Exception):
    """A command's WebSocket stream ended without its terminal event."""


def vehicle_id_of(vehicle: VehicleRef) -> str:
    """A vehicle's id from the id itself or from a vehicle object of the API."""
    if isinstance(vehicle, Mapping):
        return str(vehicle["vehicle_id"])
    return str(vehicle)


def ecu_address_of(ecu: str | int) -> int:
    if isinstance(ecu, int):
        return ecu
    try:
        return int(ecu, 16)
    except ValueError:
        raise ValueError(f"an ECU address is a hex byte like '0x01', got {ecu!r}") from None


def _is_terminal(event: Mapping[str, Any]) -> bool:
    return event.get("event") == "error" or event.get("status") in (
        "completed",
        "failed",
        "timed_out",
    )


class SovdSimClient:
    """A signed-in user of a running sovd-sim.

    `url` is the server's base URL, `token` the user's access token and `session` an
    aiohttp ClientSession sending it (`await sim.session.get(sim.url + "/api/v1/...")`).
    `username`, `password` and `role` say who that is."""

    def __init__(
        self,
        *,
        url: str,
        session: aiohttp.ClientSession,
        token: str,
        username: str,
        password: str,
        role: str,
        inject_fault: Callable[[str, int, str, int], Awaitable[None]],
        set_latency: Callable[[int, int], Awaitable[None]],
    ) -> None:
        self.url = url
        self.ws_url = "ws" + url.removeprefix("http")
        self.session = session
        self.token = token
        self.username = username
        self.password = password
        self.role = role
        self._inject_fault = inject_fault
        self._set_latency = set_latency
        self._loop = asyncio.get_running_loop()

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(LOOP_MISMATCH)

    async def _json(self, method: str, path: str, expected: int, **options: Any) -> Any:
        self._check_loop()
        async with self.session.request(method, self.url + path, **options) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            if response.status != expected:
                raise ApiError(method, path, response.status, body)
            return body

    async def vehicles(self) -> list[dict[str, Any]]:
        """Every vehicle (`GET /api/v1/vehicles`, all pages), in the API's order (VIN)."""
        found: list[dict[str, Any]] = []
        while True:
            page = await self._json(
                "GET",
                "/api/v1/vehicles",
                200,
                params={"limit": str(LIST_PAGE), "offset": str(len(found))},
            )
            found.extend(page)
            if len(page) < LIST_PAGE:
                return found

    async def vehicle(self, vehicle: VehicleRef) -> dict[str, Any]:
        """One vehicle with its `ecus` (`GET /api/v1/vehicles/{id}`)."""
        result: dict[str, Any] = await self._json(
            "GET", f"/api/v1/vehicles/{vehicle_id_of(vehicle)}", 200
        )
        return result

    async def submit(
        self, vehicle: VehicleRef, name: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Submits a command (`POST /api/v1/commands`) and returns the accepted command
        (`status` "pending", `stream_url`); any answer but 202 raises ApiError."""
        body = {
            "vehicle_id": vehicle_id_of(vehicle),
            "command_name": name,
            "command_params": dict(params or {}),
        }
        command: dict[str, Any] = await self._json("POST", "/api/v1/commands", 202, json=body)
        return command

    async def stream(
        self, command_id: str | Mapping[str, Any], timeout_s: float = 30.0
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of the command's WebSocket stream (`/ws/responses/{id}`), in order:
        what is stored first, then live ones, up to the terminal `status` or `error` event.
        Raises StreamError if the stream ends otherwise, TimeoutError after `timeout_s`."""
        self._check_loop()
        command = command_id["command_id"] if isinstance(command_id, Mapping) else command_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with self.session.ws_connect(
            f"{self.ws_url}/ws/responses/{command}", params={"token": self.token}
        ) as ws:
            while True:
                message = await ws.receive(timeout=max(0.0, deadline - loop.time()))
                if message.type == aiohttp.WSMsgType.TEXT:
                    event: dict[str, Any] = json.loads(message.data)
                    yield event
                    if _is_terminal(event):
                        return
                    continue
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    raise StreamError(
                        f"the stream of command {command} closed before its terminal event "
                        f"(code {ws.close_code}, {message.extra or 'no reason'})"
                    )
                raise StreamError(f"the stream of command {command} failed: {message!r}")

    async def wait(
        self, command_id: str | Mapping[str, Any], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """The command once it is over: the stream is followed to its terminal event, then
        the command is read (`GET /api/v1/commands/{id}`) with its reply chunks under
        `responses` (as `GET .../responses` gives them)."""
        command = command_id["command_id"] if isinstance(command_id, Mapping) else command_id
        async for _ in self.stream(command, timeout_s):
            pass
        finished: dict[str, Any] = await self._json("GET", f"/api/v1/commands/{command}", 200)
        finished["responses"] = await self._json(
            "GET", f"/api/v1/commands/{command}/responses", 200
        )
        return finished

    async def run(
        self,
        vehicle: VehicleRef,
        name: str,
        params: Mapping[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """`submit` then `wait`: the finished command with its replies."""
        return await self.wait(await self.submit(vehicle, name, params), timeout_s)

    async def inject_fault(
        self, vehicle: VehicleRef, ecu: str | int, dtc_code: str, status: int = 0x2F
    ) -> None:
        """The vehicle's ECU (`"0x01"`) detects the fault `dtc_code` (`"P0420"`) now, with
        UDS status byte `status` (0x2F: test failed, pending, confirmed): the next ReadDTC
        lists it. The server has no API for this; the fixture changes the in-process
        vehicle directly, between two of its commands. A vehicle or ECU the fleet lacks, or
        a code that is not SAE J2012, raises ValueError."""
        self._check_loop()
        await self._inject_fault(vehicle_id_of(vehicle), ecu_address_of(ecu), dtc_code, status)

    async def set_latency(self, min_ms: int, max_ms: int) -> None:
        """Every vehicle, including fleets of a fleet file that set their own latency, waits
        between `min_ms` and `max_ms` (uniformly drawn) before answering each command it
        starts from now on; commands already waiting keep their draw. The server has no API
        for this; the fixture changes the in-process simulation directly."""
        self._check_loop()
        if not 0 <= min_ms <= max_ms:
            raise ValueError(f"set_latency needs 0 <= min_ms <= max_ms, got {min_ms}, {max_ms}")
        await self._set_latency(min_ms, max_ms)
