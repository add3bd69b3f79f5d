"""A TCP proxy a test can cut and restore, to take a real service away from the app under test
without stopping the service every other test uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._cuts = 0
        # The local port of each open link's connection to the target, as the target sees it.
        self._upstream_ports: set[int] = set()
        self._link_closed = asyncio.Condition()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stops listening and resets every open connection, as a crashed service would."""
        self._cuts += 1
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    def stop_listening(self) -> None:
        """Refuses new connections and leaves open ones be, as a server shutting down does."""
        assert self._server is not None
        self._server.close()
        self._server = None

    def upstream_ports(self) -> list[int]:
        """The client ports the target sees for the open links (`client_port` in PostgreSQL's
        pg_stat_activity)."""
        return sorted(self._upstream_ports)

    async def closed(self, upstream_ports: Iterable[int]) -> None:
        """Returns once the links with these upstream ports are closed."""
        ports = set(upstream_ports)
        async with self._link_closed:
            await self._link_closed.wait_for(lambda: not ports & self._upstream_ports)

    async def stop(self) -> None:
        """Cuts whatever is still open; for test teardown."""
        await self.cut()

    async def restore(self) -> None:
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cuts = self._cuts
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if cuts != self._cuts:  # cut while connecting
            up_writer.transport.abort()
            writer.transport.abort()
            return
        upstream_port = up_writer.get_extra_info("sockname")[1]
        self._writers.update((writer, up_writer))
        self._upstream_ports.add(upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)
            self._upstream_ports.discard(upstream_port)
            async with self._link_closed:
                self._link_closed.notify_all()
