"""A simulator for one test: the server started, a user signed in, the client handed out."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from uuid import UUID

import aiohttp
from aiohttp import web

from actors.latency import latency_model
from sovd.errors import SovdError
from sovd.fleet import LatencyRange
from sovd.fleet_config import InvalidFleetConfig
from sovd_sim_pytest.client import ApiError, SovdSimClient
from sovd_sim_pytest.server import ADMIN, SimServer
from sovd_sim_pytest.settings import SettingsError, SimSettings
from web.config import ConfigError
from web.typedefs import actors_key


async def _login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    body = {"username": username, "password": password}
    async with session.post(f"{url}/api/v1/auth/login", json=body) as response:
        answer = await response.json()
        if response.status != 200:
            raise ApiError("POST", "/api/v1/auth/login", response.status, answer)
        token: str = answer["access_token"]
        return token


@contextlib.asynccontextmanager
async def open_simulator(settings: SimSettings) -> AsyncIterator[SovdSimClient]:
    """Runs a server with the settings' fleet and yields a client signed in with the
    settings' role; everything stops on exit. Usable outside pytest too."""
    try:
        server = SimServer(settings)
    except (InvalidFleetConfig, ConfigError) as exc:
        lines = exc.lines() if isinstance(exc, InvalidFleetConfig) else [str(exc)]
        raise SettingsError("\n".join(lines)) from None
    await server.start()
    try:
        username, password = ADMIN, server.admin_password
        if settings.role != "admin":
            username, password = f"pytest-{settings.role}", secrets.token_urlsafe(24)
            await server.add_user(username, password, settings.role)
        async with aiohttp.ClientSession() as anonymous:
            token = await _login(anonymous, server.url, username, password)

        async def inject_fault(vehicle_id: str, ecu: int, dtc_code: str, status: int) -> None:
            def store(app: web.Application) -> None:
                try:
                    app[actors_key].store_fault(_uuid(vehicle_id), ecu, dtc_code, status)
                except SovdError as exc:
                    raise ValueError(str(exc)) from None

            await server.call(store)

        async def set_latency(min_ms: int, max_ms: int) -> None:
            model = latency_model(LatencyRange(min_ms / 1000, max_ms / 1000))
            await server.call(lambda app: app[actors_key].set_latency(model))

        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            yield SovdSimClient(
                url=server.url,
                session=session,
                token=token,
                username=username,
                password=password,
                role=settings.role,
                inject_fault=inject_fault,
                set_latency=set_latency,
            )
    finally:
        await server.stop()


def _uuid(vehicle_id: str) -> UUID:
    try:
        return UUID(vehicle_id)
    except ValueError:
        raise ValueError(f"not a vehicle id: {vehicle_id!r}") from None
