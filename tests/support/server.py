"""Runs `sovd-sim` as a separate process, the way a user does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class ServerProcess:
    """`sovd-sim serve` on a free port; started() returns once it logged server_started."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.args: Sequence[str] = args
        self.env = {
            "SOVD_LOG_FORMAT": "json",
            "SOVD_LATENCY_MS": "1,3",
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._new_event = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 30.0) -> ServerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--port",
            str(self.port),
            *self.args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        waiter = asyncio.create_task(self._started.wait())
        exited = asyncio.create_task(self.process.wait())
        await asyncio.wait({waiter, exited}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        exited.cancel()
        if not self._started.is_set():
            await self.stop()
            raise AssertionError("server did not start:\n" + "\n".join(self.lines))
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
                if event.get("event") == "server_started":
                    self._started.set()
                async with self._new_event:
                    self._new_event.notify_all()

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def wait_for_event(self, name: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The first logged event with this name, waiting for it if need be."""

        def logged() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("event") == name), None)

        async with self._new_event:
            await asyncio.wait_for(self._new_event.wait_for(logged), timeout_s)
        found = logged()
        assert found is not None
        return found

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("level") in ("error", "critical")]
