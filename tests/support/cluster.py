"""Several `sovd-sim serve --cluster` processes on one PostgreSQL database and one Redis."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import redis.asyncio as redis

from sovd.partitions import partition_of
from tests.support.server import ServerProcess

PASSWORD = "cluster-admin-password"
SECRET = "cluster-e2e-secret-" + "c" * 40


async def forget_cluster(redis_url: str) -> None:
    """Deletes every key cluster mode keeps in Redis (node list, partition count, leases,
    fencing counters, streams), and nothing else."""
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in ("sovd:cluster:*", "sovd:{p*}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


class Cluster:
    """Nodes named by the caller, sharing `env` (database, Redis, partitions, lease)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {"SOVD_ADMIN_PASSWORD": PASSWORD, "JWT_SECRET": SECRET, **env}
        self.nodes: dict[str, ServerProcess] = {}
        self.partitions = int(env["SOVD_CLUSTER_PARTITIONS"])
        self.lease_ms = int(env["SOVD_CLUSTER_LEASE_MS"])
        self.http = aiohttp.ClientSession()
        self.token = ""
        self.ecus: dict[UUID, str] = {}

    async def start(self, name: str, **env: str) -> ServerProcess:
        node = ServerProcess("--cluster", "--node-id", name, env={**self.env, **env})
        await node.start()
        self.nodes[name] = node
        if not self.token:
            login = await self.http.post(
                f"{node.url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
            )
            assert login.status == 200, await login.text()
            self.token = (await login.json())["access_token"]
            self.http.headers["Authorization"] = f"Bearer {self.token}"
        return node

    async def start_settled(self, *names: str, **env: str) -> None:
        """Starts these nodes and waits until they share the partitions."""
        for name in names:
            await self.start(name, **env)
        await self.settled(names)

    async def owned_by(self, node: str) -> list[UUID]:
        """The fleet's vehicles whose partition `node` owns now."""
        via = next(iter(self.nodes))
        owners = await self.owners(via)
        return [v for v in await self.vehicles(via) if owners[self.partition(v)] == node]

    async def close(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.returncode is None:
                await node.stop()
        await self.http.close()

    async def get(self, node: str, path: str) -> Any:
        response = await self.http.get(self.nodes[node].url + path)
        assert response.status == 200, await response.text()
        return await response.json()

    async def owners(self, via: str) -> dict[int, str]:
        """Partition -> node holding its lease, as one node sees the cluster."""
        described = await self.get(via, "/api/v1/cluster")
        return {p["partition"]: p["owner"] for p in described["partition_owners"] if p["owner"]}

    async def settled(self, names: Iterable[str], timeout_s: float = 30.0) -> float:
        """Waits until exactly these nodes hold every partition, each its even share, and
        every one of them says so; returns the seconds it took."""
        wanted = sorted(names)
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            owners = await self.owners(wanted[0])
            ready = [await self.holds_its_share(name) for name in wanted]
            if (
                all(ready)
                and len(owners) == self.partitions
                and sorted(set(owners.values())) == wanted
            ):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled on {wanted}: {owners}, ready {ready}")
            # The state lives in other processes; look again after a tenth of a lease.
            await asyncio.sleep(self.lease_ms / 10_000)

    async def holds_its_share(self, node: str) -> bool:
        """Whether the node is ready (store and bus answer) and holds its share."""
        response = await self.http.get(self.nodes[node].url + "/readyz")
        answer = await response.json()
        return response.status == 200 and bool(answer["cluster"]["holds_its_share"])

    async def vehicles(self, via: str) -> list[UUID]:
        """The fleet's vehicles; each one's first ECU is where its commands go."""
        listed = await self.get(via, "/api/v1/vehicles?limit=1000")
        found = [UUID(v["vehicle_id"]) for v in listed]
        for vehicle in found:
            if vehicle not in self.ecus:
                detail = await self.get(via, f"/api/v1/vehicles/{vehicle}")
                self.ecus[vehicle] = detail["ecus"][0]["ecu_address"]
        return found

    def partition(self, vehicle: UUID) -> int:
        return partition_of(vehicle, self.partitions)

    async def submit(self, via: str, vehicle: UUID, name: str = "ReadDTC") -> str:
        response = await self.http.post(
            self.nodes[via].url + "/api/v1/commands",
            json={
                "vehicle_id": str(vehicle),
                "command_name": name,
                "command_params": {"ecuAddress": self.ecus[vehicle]},
            },
        )
        assert response.status == 202, await response.text()
        command_id: str = (await response.json())["command_id"]
        return command_id

    async def command(self, via: str, command_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.get(via, f"/api/v1/commands/{command_id}")
        return found

    async def stream(self, via: str, command_id: str) -> AsyncIterator[dict[str, Any]]:
        """The events of the command's stream (`/ws/responses/{id}`) read through `via`,
        until the server closes it (it does once the command has ended)."""
        async with self.http.ws_connect(
            f"{self.nodes[via].url}/ws/responses/{command_id}", params={"token": self.token}
        ) as ws:
            async for message in ws:
                event: dict[str, Any] = message.json()
                yield event

    async def status_reached(self, via: str, command_id: str, status: str) -> None:
        """Returns once the command's stream, read through `via`, says it reached `status`
        (the status is then committed: events follow the commit)."""
        async for event in self.stream(via, command_id):
            if event.get("event") == "status" and event.get("status") == status:
                return
        raise AssertionError(f"command {command_id} never reached {status}")

    async def first_reply(self, via: str, command_id: str) -> None:
        """Returns once the command's stream, read through `via`, carries its first reply."""
        async for event in self.stream(via, command_id):
            if event.get("event") == "response":
                return
        raise AssertionError(f"command {command_id} ended without a reply")

    async def final_status(self, via: str, command_id: str) -> str:
        """The terminal status the command's stream, read through `via`, ends with."""
        last = ""
        async for event in self.stream(via, command_id):
            if event.get("event") == "status":
                last = event["status"]
        return last

    async def dtc_count(self, via: str, vehicle: UUID) -> int:
        """How many DTCs the vehicle's first ECU reports to a ReadDTC sent through `via`."""
        command_id = await self.submit(via, vehicle, "ReadDTC")
        (command,) = await self.finished(via, [command_id])
        assert command["status"] == "completed", command
        replies = await self.get(via, f"/api/v1/commands/{command_id}/responses")
        count: int = replies[-1]["response_payload"]["dtcCount"]
        return count

    async def finished(
        self, via: str, command_ids: Iterable[str], timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """The commands once every one is terminal, read through one node. A command's
        end is an event in another process; its stream (`/ws/responses/{id}`) closes then."""
        ids = list(command_ids)

        async def follow(command_id: str) -> None:
            async for _ in self.stream(via, command_id):
                pass

        try:
            await asyncio.wait_for(asyncio.gather(*(follow(c) for c in ids)), timeout_s)
        except TimeoutError:
            commands = [await self.command(via, c) for c in ids]
            stuck = [(c["command_id"], c["status"]) for c in commands if not c["completed_at"]]
            self.keep_logs()
            raise AssertionError(f"not finished after {timeout_s} s: {stuck}") from None
        return [await self.command(via, c) for c in ids]

    def keep_logs(self) -> None:
        """Writes every node's output to $SOVD_TEST_LOGS/<node>.log when that is set."""
        folder = os.environ.get("SOVD_TEST_LOGS")
        if folder:
            for name, node in self.nodes.items():
                Path(folder, f"{name}.log").write_text("\n".join(node.lines), encoding="utf-8")
