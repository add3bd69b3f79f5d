"""Cluster mode from outside: node processes on one PostgreSQL database and one Redis, used
over HTTP and WebSocket, with nodes joining, killed with SIGKILL and paused past their
lease (SPEC §7)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import aiohttp
import asyncpg
import pytest
from yarl import URL

from bench.chaos import RedisServer
from tests.conftest import fresh_database
from tests.support.cluster import Cluster, forget_cluster
from tests.support.server import free_port, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PARTITIONS = 8
LEASE_MS = 1500
FLEET = """
[[fleets]]
name = "cluster-golfs"
count = 40
profile = "vw-golf"
"""


@pytest.fixture
async def cluster(redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    # A Redis database of this test run's own (1-12), so test runs side by side never
    # share a cluster's leases and streams.
    redis_url = str(URL(redis_url).with_path(f"/{os.getpid() % 12 + 1}"))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET, encoding="utf-8")
    async with fresh_database() as dsn:
        await forget_cluster(redis_url)
        running = Cluster(
            {
                "DATABASE_URL": dsn,
                "REDIS_URL": redis_url,
                "SOVD_CLUSTER_PARTITIONS": str(PARTITIONS),
                "SOVD_CLUSTER_LEASE_MS": str(LEASE_MS),
                "SOVD_FLEET": str(fleet),
                "SOVD_LATENCY_MS": "1,3",
            }
        )
        try:
            yield running
        finally:
            await running.close()
            await forget_cluster(redis_url)


def errors_of(cluster: Cluster, *names: str) -> list[object]:
    return [e for name in names for e in cluster.nodes[name].errors()]


async def test_every_node_takes_any_vehicle_and_each_vehicle_keeps_its_order(
    cluster: Cluster,
) -> None:
    await cluster.start_settled("a", "b")
    vehicles = await cluster.vehicles("a")
    assert await cluster.owned_by("a") and await cluster.owned_by("b")

    # Each vehicle gets five commands in turn through both nodes, so most hop through a
    # partition stream to the other node.
    submitted: dict[UUID, list[str]] = {v: [] for v in vehicles}
    for round_ in range(5):
        for index, vehicle in enumerate(vehicles):
            via = "ab"[(index + round_) % 2]
            submitted[vehicle].append(await cluster.submit(via, vehicle))
    every = [c for ids in submitted.values() for c in ids]
    done = {c["command_id"]: c for c in await cluster.finished("b", every)}
    assert {c["status"] for c in done.values()} == {"completed"}
    for ids in submitted.values():
        finished_at = [done[c]["completed_at"] for c in ids]
        assert finished_at == sorted(finished_at), "a vehicle ran its commands out of order"
    assert errors_of(cluster, "a", "b") == []


async def test_a_killed_node_loses_no_accepted_command(cluster: Cluster) -> None:
    """Load through three nodes, one of them killed with SIGKILL mid-run: its partitions
    are served again, every accepted command ends, only the commands it was running fail
    (as interrupted), none runs twice, each vehicle keeps its order, and WebSocket clients
    on the surviving nodes get every final result."""
    await cluster.start_settled("a", "b", "c", SOVD_LOG_LEVEL="debug")
    vehicles = await cluster.vehicles("a")
    on_c = await cluster.owned_by("c")
    assert on_c, "node c owns no vehicle of the fleet"

    accepted: dict[str, UUID] = {}
    finals: dict[str, str] = {}
    followers: list[asyncio.Task[None]] = []
    entry = ["a", "b", "c"]
    stop = asyncio.Event()
    reached = {150: asyncio.Event(), 300: asyncio.Event()}

    async def follow(via: str, command_id: str) -> None:
        finals[command_id] = await cluster.final_status(via, command_id)

    async def load() -> None:
        pick = random.Random(7)
        while not stop.is_set():
            vehicle, via = pick.choice(vehicles), pick.choice(entry)
            name = pick.choice(["ReadDTC", "ClearDTC"])
            try:
                command_id = await cluster.submit(via, vehicle, name)
            except (aiohttp.ClientError, AssertionError):
                assert via == "c", f"node {via} refused a command"
                continue
            accepted[command_id] = vehicle
            if len(accepted) in reached:
                reached[len(accepted)].set()
            survivor = pick.choice("ab")
            followers.append(asyncio.create_task(follow(survivor, command_id)))
            await asyncio.sleep(0.005)

    loading = asyncio.create_task(load())
    await reached[150].wait()
    entry.remove("c")
    cluster.nodes["c"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    await cluster.nodes["c"].stop()
    took = await cluster.settled(["a", "b"], timeout_s=10)
    await reached[300].wait()
    stop.set()
    await loading

    done = {c["command_id"]: c for c in await cluster.finished("b", accepted)}
    await asyncio.wait_for(asyncio.gather(*followers), 30)
    failed = [c for c in done.values() if c["status"] != "completed"]
    # Only commands node c was running when it died may fail, and they say why.
    assert all(c["status"] == "failed" for c in failed), failed
    assert all("interrupted" in c["error_message"] for c in failed), failed
    assert len(failed) <= len(on_c)
    assert {command_id: c["status"] for command_id, c in done.items()} == finals
    assert took < 10

    started = [
        e["command_id"]
        for name in ("a", "b")
        for e in cluster.nodes[name].events
        if e.get("event") == "command_started"
    ]
    assert len(started) == len(set(started)), "a command ran twice"
    never_on_c = {c for c, vehicle in accepted.items() if vehicle not in on_c}
    assert never_on_c <= set(started)
    print(f"takeover {took:.1f} s, {len(accepted)} accepted, {len(failed)} interrupted")
    per_vehicle: dict[UUID, list[str]] = {}
    for command_id, vehicle in accepted.items():
        if done[command_id]["status"] == "completed":
            per_vehicle.setdefault(vehicle, []).append(done[command_id]["completed_at"])
    for finished_at in per_vehicle.values():
        assert finished_at == sorted(finished_at), "a vehicle ran its commands out of order"
    assert errors_of(cluster, "a", "b") == []


async def test_a_cleared_dtc_stays_cleared_when_its_node_is_killed_and_restarted(
    cluster: Cluster,
) -> None:
    await cluster.start_settled("a", "b")
    on_b = await cluster.owned_by("b")
    counts = {v: await cluster.dtc_count("a", v) for v in on_b}
    vehicle = next(v for v, count in counts.items() if count > 0)

    (cleared,) = await cluster.finished("a", [await cluster.submit("a", vehicle, "ClearDTC")])
    assert cleared["status"] == "completed"
    assert await cluster.dtc_count("a", vehicle) == 0

    cluster.nodes["b"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    await cluster.nodes["b"].stop()
    await cluster.settled(["a"], timeout_s=10)
    assert await cluster.dtc_count("a", vehicle) == 0  # now run by node a
    await cluster.start("b")
    await cluster.settled(["a", "b"])
    assert (await cluster.owners("a"))[cluster.partition(vehicle)] == "b"
    assert await cluster.dtc_count("a", vehicle) == 0  # run by the new node b
    # The other vehicles kept their DTCs through both moves.
    assert {v: await cluster.dtc_count("b", v) for v in on_b if v != vehicle} == {
        v: c for v, c in counts.items() if v != vehicle
    }


async def test_a_joining_node_takes_its_share_while_commands_flow(cluster: Cluster) -> None:
    await cluster.start("a")
    await cluster.settled(["a"])
    vehicles = await cluster.vehicles("a")
    submitted: dict[UUID, list[str]] = {v: [] for v in vehicles}

    async def send(rounds: int) -> None:
        for _ in range(rounds):
            for vehicle in vehicles:
                submitted[vehicle].append(await cluster.submit("a", vehicle))

    sending = asyncio.create_task(send(4))
    await cluster.start("b")
    await cluster.settled(["a", "b"])
    await sending
    await send(1)
    every = [c for ids in submitted.values() for c in ids]
    done = {c["command_id"]: c for c in await cluster.finished("a", every)}
    assert {c["status"] for c in done.values()} == {"completed"}
    for ids in submitted.values():
        finished_at = [done[c]["completed_at"] for c in ids]
        assert finished_at == sorted(finished_at)
    owners = await cluster.owners("a")
    assert sorted(list(owners.values()).count(n) for n in ("a", "b")) == [
        PARTITIONS // 2,
        PARTITIONS // 2,
    ]
    assert errors_of(cluster, "a", "b") == []


async def test_a_paused_owner_cannot_write_after_losing_its_lease(cluster: Cluster) -> None:
    """Node b runs a slow command and stops (SIGSTOP) past its lease; node a takes the
    partition over and fails the command as interrupted. When b resumes, its late result is
    refused by the fencing token: the command stays as a left it."""
    await cluster.start("a")
    await cluster.start("b", SOVD_LATENCY_MS=f"{2 * LEASE_MS},{2 * LEASE_MS}")
    await cluster.settled(["a", "b"])
    vehicle = (await cluster.owned_by("b"))[0]
    b = cluster.nodes["b"]
    assert b.process is not None

    command_id = await cluster.submit("a", vehicle)
    await cluster.status_reached("a", command_id, "in_progress")
    b.process.send_signal(signal.SIGSTOP)
    try:
        await cluster.settled(["a"], timeout_s=6 * LEASE_MS / 1000)
        (interrupted,) = await cluster.finished("a", [command_id])
    finally:
        b.process.send_signal(signal.SIGCONT)
    assert interrupted["status"] == "failed"
    assert "interrupted" in interrupted["error_message"]

    refused = await b.wait_for_event("stale_owner_write_refused", timeout_s=4 * LEASE_MS / 1000)
    assert refused["partitions"] == [cluster.partition(vehicle)]
    assert await cluster.command("a", command_id) == interrupted
    # b rejoins and the cluster settles on both nodes again.
    await cluster.settled(["a", "b"], timeout_s=6 * LEASE_MS / 1000)


async def test_nodes_must_agree_on_the_partition_count(cluster: Cluster) -> None:
    await cluster.start("a")
    code, out, err = await run_cli(
        "serve",
        "--cluster",
        "--node-id",
        "z",
        "--port",
        str(free_port()),
        env={**cluster.env, "SOVD_CLUSTER_PARTITIONS": str(PARTITIONS * 2)},
    )
    assert code == 2, out + err
    assert f"started with {PARTITIONS} partitions" in out + err
    assert f"configured with {PARTITIONS * 2}" in out + err


@pytest.mark.parametrize("how", ["stop", "timeout"])
async def test_an_sovd_execution_stops_through_a_node_that_does_not_run_it(
    cluster: Cluster, how: str
) -> None:
    """A self-test runs on node b, the vehicle's owner; stopping it through node a (by
    `capability: stop` or by the execution's `timeout`) reaches it on b."""
    await cluster.start_settled("a", "b", SOVD_TIME_SCALE="1")
    vehicle = (await cluster.owned_by("b"))[0]
    sovd = f"{cluster.nodes['a'].url}/vehicles/{vehicle}/sovd/v1"
    components = (await (await cluster.http.get(f"{sovd}/components")).json())["items"]
    operation = f"{sovd}/components/{components[0]['id']}/operations/self-test"
    body = {"timeout": 1} if how == "timeout" else {}
    started = await cluster.http.post(f"{operation}/executions", json=body)
    assert started.status == 202, await started.text()
    execution_id = (await started.json())["id"]

    if how == "stop":
        await cluster.first_reply("a", execution_id)
        stop = await cluster.http.put(
            f"{operation}/executions/{execution_id}", json={"capability": "stop"}
        )
        assert stop.status == 202, await stop.text()
    (command,) = await cluster.finished("a", [execution_id])
    assert command["status"] == "completed"
    ended = await (await cluster.http.get(f"{operation}/executions/{execution_id}")).json()
    assert (ended["capability"], ended["parameters"]) == ("stop", {"state": "stopped"})
    assert ended["progress"] < 100


async def test_a_command_stored_but_never_routed_is_ended(cluster: Cluster) -> None:
    """The state an accepting node leaves when it dies between storing a command and
    appending it to its partition's stream: the owner ends it, failed with the reason,
    once the stream has been read past it."""
    await cluster.start_settled("a")
    vehicle = (await cluster.vehicles("a"))[0]
    command_id = uuid4()
    database = await asyncpg.connect(cluster.env["DATABASE_URL"])
    try:
        await database.execute(
            """INSERT INTO commands (command_id, user_id, vehicle_id, command_name,
                                     command_params, status, submitted_at)
               SELECT $1, user_id, $2, 'ReadDTC', $3::jsonb, 'pending', now()
               FROM users WHERE username = 'admin'""",
            command_id,
            vehicle,
            json.dumps({"ecuAddress": cluster.ecus[vehicle]}),
        )
    finally:
        await database.close()
    (command,) = await cluster.finished("a", [str(command_id)], timeout_s=6 * LEASE_MS / 1000)
    assert command["status"] == "failed"
    assert "stopped before passing it on" in command["error_message"]
    stranded = await cluster.nodes["a"].wait_for_event("command_stranded")
    assert stranded["command_id"] == str(command_id)
    # The vehicle goes on with its next command.
    (after,) = await cluster.finished("a", [await cluster.submit("a", vehicle)])
    assert after["status"] == "completed"


async def test_a_redis_restart_under_load_loses_no_accepted_command(
    tmp_path: Path, cluster: Cluster
) -> None:
    """Redis (a private one, nothing saved) restarts while two nodes take commands: leases,
    fencing counters and streams are gone. The nodes take their partitions again from what
    PostgreSQL holds; every accepted command ends, and the cluster takes commands again."""
    redis = RedisServer(tmp_path)
    await redis.start()
    try:
        cluster.env["REDIS_URL"] = redis.url
        await cluster.start_settled("a", "b")
        vehicles = await cluster.vehicles("a")
        accepted: list[str] = []
        refused = 0

        async def load(rounds: int) -> None:
            nonlocal refused
            for index in range(rounds):
                vehicle = vehicles[index % len(vehicles)]
                try:
                    accepted.append(await cluster.submit("ab"[index % 2], vehicle))
                except AssertionError:  # 503 while Redis is down
                    refused += 1
                await asyncio.sleep(0.01)

        loading = asyncio.create_task(load(300))
        await asyncio.sleep(0.5)  # mid-run, by the load's own clock
        await redis.restart()
        await loading
        await cluster.settled(["a", "b"], timeout_s=20)
        after = [await cluster.submit("a", v) for v in vehicles[:10]]

        done = await cluster.finished("b", [*accepted, *after], timeout_s=90)
        assert {c["status"] for c in done} <= {"completed", "failed"}
        failed = [c for c in done if c["status"] == "failed"]
        assert all("interrupted" in c["error_message"] for c in failed), failed
        assert [c["status"] for c in done[len(accepted) :]] == ["completed"] * len(after)
        events = [e["event"] for node in cluster.nodes.values() for e in node.events]
        print(f"{len(accepted)} accepted, {refused} refused, {len(failed)} interrupted")
        # The restart took the leases with it: the nodes lost their partitions and took them
        # again from PostgreSQL's record.
        assert events.count("partition_lost") >= PARTITIONS
        assert events.count("partition_recovered") >= 1
    finally:
        await cluster.close()
        await redis.stop()
