"""The fixture's server: `create_app` on the embedded default, on an event loop of its own in
a background thread. Tests reach it over HTTP from whatever loop they run on, and code under
test may be synchronous (`requests`) without blocking the simulated vehicles."""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from sovd.records import Role
from sovd_sim_pytest.settings import SimSettings, fleet_document
from web.app import create_app
from web.auth.accounts import create_user
from web.auth.passwords import PasswordHasher
from web.config import Config, load_config
from web.typedefs import store_key
from web.vehicles.fleets import read_fleet_file

T = TypeVar("T")
ADMIN = "admin"
# Commands still running when a test ends get this long before they end timed_out.
SHUTDOWN_TIMEOUT_S = 1.0


def server_config(settings: SimSettings, fleet_file: Path, admin_password: str) -> Config:
    """The embedded default (no DATABASE_URL / REDIS_URL, whatever the environment says),
    with cheap password hashing and tokens that outlive any test."""
    return load_config(
        environ={},
        flags={
            "server.shutdown_timeout_s": SHUTDOWN_TIMEOUT_S,
            "auth.jwt_secret": secrets.token_urlsafe(48),
            "auth.admin_password": admin_password,
            "auth.access_ttl_s": 24 * 3600,
            "auth.password_time_cost": 1,
            "auth.password_memory_kib": 8,
            "auth.password_parallelism": 1,
            "simulation.fleet": str(fleet_file),
            "simulation.seed": settings.seed,
            "simulation.latency_ms": settings.latency_ms,
            "simulation.time_scale": settings.time_scale,
        },
    )


class SimServer:
    """One server; `start` returns once it listens on a free port of 127.0.0.1."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.admin_password = secrets.token_urlsafe(24)
        self.url = ""
        self._files = tempfile.TemporaryDirectory(prefix="sovd-sim-")
        fleet_file = settings.fleet
        if fleet_file is None:
            fleet_file = Path(self._files.name) / "fleet.toml"
            fleet_file.write_text(fleet_document(settings), encoding="utf-8")
        try:  # mistakes in the fleet or the settings surface here, before a thread starts
            read_fleet_file(str(fleet_file), settings.seed)
            self.config = server_config(settings, fleet_file, self.admin_password)
        except BaseException:
            self._files.cleanup()
            raise
        self._started: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app: web.Application | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="sovd-sim-server", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        try:
            self.url = await asyncio.wrap_future(self._started)
        except BaseException:
            self._files.cleanup()
            raise

    async def add_user(self, username: str, password: str, role: Role) -> None:
        async def add(app: web.Application) -> None:
            hasher = PasswordHasher.from_config(self.config.auth)
            await create_user(
                app[store_key], hasher, username=username, password=password, role=role
            )

        loop = self._running_loop()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(add(self._application()), loop))

    async def call(self, action: Callable[[web.Application], T]) -> T:
        """Runs `action` on the server's loop, between two of its callbacks, and returns
        what it returned (or raises what it raised)."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        app = self._application()

        def run() -> None:
            try:
                done.set_result(action(app))
            except BaseException as exc:
                done.set_exception(exc)

        self._running_loop().call_soon_threadsafe(run)
        return await asyncio.wrap_future(done)

    async def stop(self) -> None:
        """Stops accepting, ends open streams and running commands, and joins the thread."""
        if self._loop is not None and self._stop is not None and not self._stopped.done():
            self._loop.call_soon_threadsafe(self._stop.set)
        try:
            await asyncio.wrap_future(self._stopped)
        finally:
            await asyncio.to_thread(self._thread.join)
            self._files.cleanup()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._stopped.done():
            raise RuntimeError("the sovd-sim server is not running")
        return self._loop

    def _application(self) -> web.Application:
        if self._app is None:
            raise RuntimeError("the sovd-sim server is not running")
        return self._app

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            self._stopped.set_exception(exc)
        else:
            self._stopped.set_result(None)

    async def _serve(self) -> None:
        app = create_app(self.config)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self._stop = asyncio.Event()
            self._app = app
            self._loop = asyncio.get_running_loop()
            self._started.set_result(f"http://127.0.0.1:{port}")
            await self._stop.wait()
        finally:
            await runner.cleanup()
