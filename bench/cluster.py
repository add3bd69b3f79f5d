"""Cluster benchmark (SPEC §6, §7): `sovd-sim serve --cluster` as 1, 2, 3... node processes
on one PostgreSQL database and one Redis, simulated latency 0, open-loop load spread over
the nodes.

Each POST goes to a node picked at random, so with N nodes about (N-1)/N of the commands are
accepted by one node and run by the partition's owner, another node, through the partition's
Redis stream. Completion is watched on one node's fleet feed (every node gets every event);
what became of each accepted command is read from PostgreSQL at the end (each run begins
with the scratch database's commands table emptied, so all it holds is the run's). Prints, per node
count and rate: completed commands/s, POST-to-completed percentiles, accepted commands that
never finished (must be 0), how many hopped to another node, and the CPU each command cost.

On a 2-core machine more nodes are not faster: they share the same two cores with
PostgreSQL, Redis and the load generator. The figures say what routing costs and that
nothing is lost; SPEC §6's per-node target needs a machine with the cores for the nodes.

With `--kill`, the last node is killed (SIGKILL) halfway through the last rate's run of each
node count above one: the run then reports how long until every partition had a live owner
again and that every accepted command still reached a terminal state (commands that were
running on the killed node fail as interrupted; that is allowed).

    .venv/bin/python bench/cluster.py [--nodes 1,2] [--rates 500,1000] [--duration 6]
    .venv/bin/python bench/cluster.py --nodes 2,3 --rates 500 --duration 10 --kill

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://root@127.0.0.1:5432/test, used
to create a scratch database) and Redis (BENCH_CLUSTER_REDIS_URL, default
redis://127.0.0.1:6379/14: a database index of its own, so no other cluster on the same Redis
joins this one). Before each node count, the cluster's keys there (`sovd:cluster:*`,
`sovd:{pN}:*`) are deleted; nothing else is. Node logs are kept in a temporary directory,
named at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import orjson
import redis.asyncio as redis
from pipeline import PASSWORD, SECRET, free_port, fresh_database, machine_speed_s, run, wait_ready
from procstat import Snapshot, cpu_seconds, is_postgres, is_redis, used

from loadtest.client import LeanPool, post_request
from loadtest.report import TERMINAL, LoadReport, percentile
from sovd.partitions import partition_of

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/14")
CLUSTER_KEY_PATTERNS = ("sovd:cluster:*", "sovd:{p*}:*")
CLUSTER_KEY = re.compile(r"sovd:(cluster:|\{p\d+\}:)")
DATABASE = "sovd_bench_cluster"
SHARE_TIMEOUT_S = 60.0
DRAIN_S = 30.0
COMMAND = "ReadDTC"

FLEET_TOML = """\
# The cluster benchmark's fleet: one model, every vehicle connected, no simulated failures.
[simulation]
seed = 7

[simulation.latency]
distribution = "uniform"
min_ms = 0
max_ms = 0

[[fleets]]
name = "cluster-bench"
count = {count}
profile = "vw-golf"
"""


@dataclass(frozen=True)
class Plan:
    node_counts: list[int]
    rates: list[float]
    duration_s: float
    vehicles: int
    partitions: int
    lease_ms: int
    connections: int
    kill: bool
    log_level: str


# Redis ---------------------------------------------------------------------------------------


async def clear_cluster_keys(url: str) -> int:
    """Deletes the cluster's keys (node heartbeats, partition count, leases, fences, streams)
    and nothing else; how many there were."""
    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        for pattern in CLUSTER_KEY_PATTERNS:
            async for key in client.scan_iter(match=pattern, count=1000):
                if CLUSTER_KEY.match(key.decode()):
                    deleted += await client.delete(key)
    finally:
        await client.aclose()
    return deleted


# The nodes -----------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def logged(self) -> Counter[str]:
        """The node's log events by level and name (at --log-level warning, the default,
        warnings and worse only); lines that are not JSON count as `text`."""
        events: Counter[str] = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                events["text"] += 1
                continue
            events[f"{event.get('level')} {event.get('event')}"] += 1
        return events


async def start_node(name: str, env: dict[str, str], fleet_file: Path, log_dir: Path) -> Node:
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "serve", "--cluster", "--node-id", name,
            "--port", str(port), "--fleet", str(fleet_file), "--latency-ms", "0,0",
            cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    node = Node(name, port, process, log_path)
    try:
        await asyncio.to_thread(wait_ready, node.url, 60)
    except SystemExit:
        raise SystemExit(f"{name} did not become ready:\n{node.log_tail()}") from None
    return node


async def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        if node.process.returncode is None:
            node.process.terminate()
    for node in nodes:
        try:
            await asyncio.wait_for(node.process.wait(), 30)
        except TimeoutError:
            node.process.kill()
            await node.process.wait()


def node_env(dsn: str, plan: Plan) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": SECRET,
        "SOVD_ADMIN_PASSWORD": PASSWORD,
        "SOVD_LOG_LEVEL": plan.log_level,
        "SOVD_LOG_FORMAT": "json",
        "SOVD_MAILBOX_SIZE": "1024",
        "SOVD_LATENCY_MS": "0,0",
        "SOVD_CLUSTER_PARTITIONS": str(plan.partitions),
        "SOVD_CLUSTER_LEASE_MS": str(plan.lease_ms),
    }


async def login(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    ) as response:
        if response.status != 200:
            raise SystemExit(f"login failed: {response.status} {await response.text()}")
        token: str = (await response.json())["access_token"]
        return token


async def get_json(session: aiohttp.ClientSession, url: str, token: str) -> Any:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        response.raise_for_status()
        return await response.json()


def owners_of(cluster: dict[str, Any]) -> dict[int, str | None]:
    return {entry["partition"]: entry["owner"] for entry in cluster["partition_owners"]}


async def wait_for_shares(
    session: aiohttp.ClientSession, nodes: list[Node], token: str
) -> dict[int, str]:
    """Waits until each partition has an owner, every node owns some and says it holds its
    share; the owners then."""
    deadline = time.monotonic() + SHARE_TIMEOUT_S
    names = {node.name for node in nodes}
    while True:
        cluster = await get_json(session, f"{nodes[0].url}/api/v1/cluster", token)
        owners = owners_of(cluster)
        ready = [await get_json(session, f"{node.url}/readyz", token) for node in nodes]
        if set(owners.values()) == names and all(r["cluster"]["holds_its_share"] for r in ready):
            return {partition: str(owner) for partition, owner in owners.items()}
        if time.monotonic() > deadline:
            raise SystemExit(f"the nodes did not settle their shares: {cluster}")
        await asyncio.sleep(0.1)


async def wait_for_live_owners(
    session: aiohttp.ClientSession, observer: Node, token: str, gone: str
) -> None:
    """Waits until every partition has an owner other than the node that is gone."""
    deadline = time.monotonic() + SHARE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            cluster = await get_json(session, f"{observer.url}/api/v1/cluster", token)
        except aiohttp.ClientError:
            cluster = None
        if cluster is not None and all(
            owner not in (None, gone) for owner in owners_of(cluster).values()
        ):
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"the partitions of {gone} had no live owner after {SHARE_TIMEOUT_S:.0f} s")


async def vehicle_targets(
    session: aiohttp.ClientSession, url: str, token: str, count: int
) -> list[tuple[str, str]]:
    """(vehicle id, first ECU address) of up to `count` connected vehicles."""
    listed = await get_json(
        session, f"{url}/api/v1/vehicles?status=connected&limit={min(count, 1000)}", token
    )
    vehicle_ids = [vehicle["vehicle_id"] for vehicle in listed]
    if not vehicle_ids:
        raise SystemExit("the cluster has no connected vehicles")
    # One model in the fleet: its first ECU is every vehicle's first ECU.
    first = await get_json(session, f"{url}/api/v1/vehicles/{vehicle_ids[0]}", token)
    return [(vehicle_id, first["ecus"][0]["ecu_address"]) for vehicle_id in vehicle_ids]


# One run -------------------------------------------------------------------------------------


@dataclass
class Sent:
    node: str
    vehicle_id: str
    scheduled: float


@dataclass
class ClusterRun:
    """What one run saw: the load report, plus which node accepted each command."""

    report: LoadReport = field(default_factory=LoadReport)
    accepted_by: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, Sent] = field(default_factory=dict)
    open: dict[str, Sent] = field(default_factory=dict)
    early: dict[str, tuple[str, float]] = field(default_factory=dict)
    outstanding: int = 0
    feed_resyncs: int = 0
    kill: str | None = None
    kill_at: float | None = None
    owners_back_s: float | None = None
    stored: Counter[str] = field(default_factory=Counter)
    interrupted: int = 0
    stored_unanswered: Counter[str] = field(default_factory=Counter)
    all_ended: asyncio.Event = field(default_factory=asyncio.Event)
    sending_done: bool = False

    def answered(self, sent: Sent, status: int, body: bytes, started: float) -> None:
        self.outstanding -= 1
        self.report.record_answer(COMMAND, status, started, time.perf_counter())
        if status == 202:
            command_id = orjson.loads(body)["command_id"]
            self.accepted_by[sent.node] += 1
            self.accepted[command_id] = self.open[command_id] = sent
            if command_id in self.early:
                self.settle(command_id, *self.early.pop(command_id))
        self.check_done()

    def settle(self, command_id: str, status: str, at: float) -> None:
        sent = self.open.pop(command_id, None)
        if sent is None:
            self.early[command_id] = (status, at)
            return
        self.report.record_terminal(COMMAND, status, sent.scheduled, at)
        self.check_done()

    def check_done(self) -> None:
        if self.sending_done and self.outstanding == 0 and not self.open:
            self.all_ended.set()

    @property
    def never_finished(self) -> int:
        """Accepted commands PostgreSQL holds no terminal status of."""
        return sum(n for status, n in self.stored.items() if status not in TERMINAL)

    def hops(self, owners: dict[int, str], partitions: int) -> int:
        """Accepted commands whose vehicle's partition another node owned when the run began."""
        return sum(
            sent.node != owners[partition_of(uuid.UUID(sent.vehicle_id), partitions)]
            for sent in self.accepted.values()
        )


async def watch_feed(feed: aiohttp.ClientWebSocketResponse, result: ClusterRun) -> None:
    async for message in feed:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        at = time.perf_counter()
        for event in orjson.loads(message.data):
            if event.get("event") == "resync":
                result.feed_resyncs += 1
            elif event.get("status") in TERMINAL:
                result.settle(event["command_id"], event["status"], at)


class Sender:
    """Open-loop POSTs on a 1 ms schedule, each to a node picked at random among the live
    ones; a request's latency counts from its scheduled time."""

    def __init__(
        self, nodes: list[Node], token: str, targets: list[tuple[str, str]], connections: int
    ) -> None:
        self.pools = {node.name: LeanPool(node.url, connections) for node in nodes}
        self.live = [node.name for node in nodes]
        self._hosts = {node.name: f"127.0.0.1:{node.port}" for node in nodes}
        self._token = token
        self._targets = targets
        self._prepared: dict[tuple[str, int], bytes] = {}
        self._random = random.Random(1)

    async def open(self) -> None:
        await asyncio.gather(*(pool.open() for pool in self.pools.values()))

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))

    def _request(self, node: str, target: int) -> bytes:
        request = self._prepared.get((node, target))
        if request is None:
            vehicle_id, ecu_address = self._targets[target]
            body = orjson.dumps(
                {
                    "vehicle_id": vehicle_id,
                    "command_name": COMMAND,
                    "command_params": {"ecuAddress": ecu_address},
                }
            )
            request = post_request(self._hosts[node], "/api/v1/commands", self._token, body)
            self._prepared[(node, target)] = request
        return request

    async def send(self, rate: float, duration_s: float, result: ClusterRun) -> None:
        report = result.report
        begin = report.first_send = time.perf_counter()
        total = int(rate * duration_s)
        tick = 0
        while report.sent < total:
            # Request k is due at k / rate: at this tick, every k <= rate * elapsed.
            due = min(total, int(rate * tick / 1000) + 1)
            while report.sent < due:
                scheduled = begin + report.sent / rate
                target = report.sent % len(self._targets)
                node = self._random.choice(self.live)
                sent = Sent(node, self._targets[target][0], scheduled)
                report.record_sent(COMMAND, scheduled)
                result.outstanding += 1
                self.pools[node].request(
                    self._request(node, target),
                    scheduled,
                    functools.partial(result.answered, sent),
                )
            tick += 1
            delay = begin + tick / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        result.sending_done = True
        result.check_done()


async def kill_midway(
    session: aiohttp.ClientSession,
    nodes: list[Node],
    sender: Sender,
    token: str,
    after_s: float,
    result: ClusterRun,
) -> None:
    """SIGKILL the last node after `after_s`; the load goes to the others from then on, and
    the time until every partition has a live owner again is recorded."""
    await asyncio.sleep(after_s)
    victim = nodes[-1]
    sender.live.remove(victim.name)
    victim.process.kill()
    await victim.process.wait()
    result.kill, result.kill_at = victim.name, time.perf_counter()
    await wait_for_live_owners(session, nodes[0], token, victim.name)
    result.owners_back_s = time.perf_counter() - result.kill_at


OUTCOMES = "SELECT command_id::text AS command_id, status, error_message FROM commands"


async def read_outcomes(dsn: str, result: ClusterRun) -> None:
    """What PostgreSQL holds of the run's commands (the table holds only this run's): the
    accepted ones by status, and those whose POST got no 202 (a node killed before it
    answered)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = {row["command_id"]: row for row in await conn.fetch(OUTCOMES)}
    finally:
        await conn.close()
    result.stored = Counter(
        rows[command_id]["status"] if command_id in rows else "missing"
        for command_id in result.accepted
    )
    result.interrupted = sum(
        (rows[command_id]["error_message"] or "").startswith("interrupted")
        for command_id in result.accepted
        if command_id in rows
    )
    result.stored_unanswered = Counter(
        row["status"] for command_id, row in rows.items() if command_id not in result.accepted
    )


async def wait_stored_terminal(dsn: str, result: ClusterRun, timeout_s: float) -> None:
    """Reads the outcomes until every command PostgreSQL holds is terminal, or until
    `timeout_s` has passed (then what is unfinished stays counted)."""
    deadline = time.monotonic() + timeout_s
    while True:
        await read_outcomes(dsn, result)
        unanswered = sum(n for s, n in result.stored_unanswered.items() if s not in TERMINAL)
        if not (result.never_finished or unanswered) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.5)


async def drive(
    session: aiohttp.ClientSession,
    nodes: list[Node],
    token: str,
    targets: list[tuple[str, str]],
    rate: float,
    plan: Plan,
    kill: bool,
) -> ClusterRun:
    result = ClusterRun()
    feed = await session.ws_connect(
        nodes[0].url.replace("http", "ws", 1) + "/ws/fleet",
        params={"token": token, "status": ",".join(TERMINAL), "batch": "true"},
        max_msg_size=0,
    )
    watcher = asyncio.create_task(watch_feed(feed, result))
    sender = Sender(nodes, token, targets, max(16, plan.connections // len(nodes)))
    await sender.open()
    killer = None
    if kill:
        killer = asyncio.create_task(
            kill_midway(session, nodes, sender, token, plan.duration_s / 2, result)
        )
    cpu_started = time.process_time()
    await sender.send(rate, plan.duration_s, result)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(result.all_ended.wait(), DRAIN_S)
    result.report.cpu_s = time.process_time() - cpu_started
    result.report.unanswered = result.outstanding
    if killer is not None:
        await killer
    watcher.cancel()
    await feed.close()
    await sender.close()
    return result


# Reporting -----------------------------------------------------------------------------------


def cpu_line(before: Snapshot, after: Snapshot, commands: int, nodes: list[Node]) -> str:
    pids = {node.process.pid for node in nodes}
    parts = [
        f"{label} {used(before, after, match) / max(1, commands) * 1e6:.0f} us"
        for label, match in (
            ("nodes", lambda key: key[0] in pids),
            ("PostgreSQL", is_postgres),
            ("Redis", is_redis),
        )
    ]
    return "CPU per command: " + ", ".join(parts)


def run_lines(result: ClusterRun, owners: dict[int, str], plan: Plan) -> list[str]:
    report = result.report
    accepted = len(result.accepted)
    hops = result.hops(owners, plan.partitions)
    by_node = ", ".join(f"{name} {n}" for name, n in sorted(result.accepted_by.items()))
    never = result.never_finished
    lines = report.lines()[:-1]
    missed = len(result.accepted) - never - report.terminal.total()
    lines += [
        f"accepted by node: {by_node}",
        f"accepted by one node and run by another: {hops} of {accepted} "
        f"({hops / max(1, accepted):.0%})",
        f"stored outcome of the accepted commands: {dict(result.stored)}, never finished {never}",
    ]
    if missed:
        lines.append(f"terminal events the fleet feed never delivered (stored terminal): {missed}")
    if result.feed_resyncs:
        lines.append(f"fleet feed resyncs (events dropped): {result.feed_resyncs}")
    if result.kill is not None:
        back = "never" if result.owners_back_s is None else f"{result.owners_back_s:.2f} s"
        lines.append(
            f"killed {result.kill} (SIGKILL) midway: every partition had a live owner again "
            f"after {back} (lease {plan.lease_ms} ms); accepted commands failed as "
            f"interrupted {result.interrupted}"
        )
        lines.append(
            "stored commands whose POST got no 202 (the killed node's last requests), "
            f"after waiting up to 10 s: {dict(result.stored_unanswered) or 0}"
        )
    lines.append(
        f"load generator CPU: {report.cpu_s:.2f} s "
        f"({report.cpu_s / max(1, report.sent) * 1e6:.0f} us per command)"
    )
    return lines


@dataclass(frozen=True)
class Row:
    nodes: int
    rate: float
    completed_per_s: float
    p50_ms: float
    p99_ms: float
    never_finished: int
    hops: int
    accepted: int
    killed: bool


def summary_lines(rows: list[Row]) -> list[str]:
    lines = [
        "",
        "== summary ==",
        "nodes  offered/s  completed/s  p50 ms  p99 ms  never finished  hopped",
    ]
    for row in rows:
        hopped = f"{row.hops} of {row.accepted}"
        lines.append(
            f"{row.nodes:>5}  {row.rate:>9.0f}  {row.completed_per_s:>11.0f}  "
            f"{row.p50_ms:>6.1f}  {row.p99_ms:>6.1f}  {row.never_finished:>14}  {hopped}"
            + ("  (a node killed midway)" if row.killed else "")
        )
    return lines


# A node count --------------------------------------------------------------------------------


async def bench_nodes(count: int, plan: Plan, log_dir: Path) -> list[Row]:
    """A fresh database and fresh cluster keys, `count` nodes, every rate."""
    dsn = await fresh_database(DATABASE)
    cleared = await clear_cluster_keys(REDIS_URL)
    env = node_env(dsn, plan)
    await run("db", "migrate", env=env, cwd=str(ROOT))
    fleet_file = log_dir / "fleet.toml"
    fleet_file.write_text(FLEET_TOML.format(count=plan.vehicles))
    nodes: list[Node] = []
    rows: list[Row] = []
    try:
        # The first node records the fleet; the others find it recorded and take it up.
        nodes.append(await start_node("node-1", env, fleet_file, log_dir))
        nodes += await asyncio.gather(
            *(start_node(f"node-{i}", env, fleet_file, log_dir) for i in range(2, count + 1))
        )
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            token = await login(session, nodes[0].url)
            owners = await wait_for_shares(session, nodes, token)
            settled_s = time.perf_counter() - started
            targets = await vehicle_targets(session, nodes[0].url, token, plan.vehicles)
            print(
                f"\n== {count} node{'s' if count > 1 else ''} ({plan.partitions} partitions, "
                f"lease {plan.lease_ms} ms, {len(targets)} vehicles; {cleared} old cluster "
                f"keys deleted): every node held its share {settled_s:.1f} s after all "
                "were ready",
                flush=True,
            )
            for index, rate in enumerate(plan.rates):
                kill = plan.kill and count > 1 and index == len(plan.rates) - 1
                rows.append(
                    await bench_rate(session, nodes, token, targets, rate, plan, owners, dsn, kill)
                )
    finally:
        await stop_nodes(nodes)
    for node in nodes:
        events = ", ".join(f"{name} x{n}" for name, n in sorted(node.logged().items()))
        print(f"{node.name} logged: {events or 'nothing'}")
    return rows


async def bench_rate(
    session: aiohttp.ClientSession,
    nodes: list[Node],
    token: str,
    targets: list[tuple[str, str]],
    rate: float,
    plan: Plan,
    owners: dict[int, str],
    dsn: str,
    kill: bool,
) -> Row:
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE commands CASCADE")  # each run's commands, and only them
    await conn.close()
    before = cpu_seconds()
    result = await drive(session, nodes, token, targets, rate, plan, kill)
    after = cpu_seconds()
    await wait_stored_terminal(dsn, result, timeout_s=10.0)
    print(f"-- offered {rate:.0f} commands/s for {plan.duration_s:.0f} s over {len(nodes)} nodes")
    for line in run_lines(result, owners, plan):
        print(line)
    print(cpu_line(before, after, result.report.sent, nodes), flush=True)
    done = result.report.completion_latencies_s
    return Row(
        nodes=len(nodes),
        rate=rate,
        completed_per_s=result.report.completed_per_s(),
        p50_ms=percentile(done, 50),
        p99_ms=percentile(done, 99),
        never_finished=result.never_finished,
        hops=result.hops(owners, plan.partitions),
        accepted=len(result.accepted),
        killed=result.kill is not None,
    )


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="1,2", help="node counts to run, e.g. 1,2,3")
    parser.add_argument("--rates", default="500,1000", help="offered commands/s")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of sending")
    parser.add_argument("--vehicles", type=int, default=1000, help="fleet size (at most 1000)")
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--lease-ms", type=int, default=5000)
    parser.add_argument(
        "--connections", type=int, default=256, help="keep-alive connections, over all nodes"
    )
    parser.add_argument(
        "--kill",
        action="store_true",
        help="SIGKILL the last node halfway through each node count's last run",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="warning",
        help="the nodes' log level (info logs every command)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]
    if any(n < 1 for n in counts) or not 1 <= args.vehicles <= 1000:
        parser.error("--nodes must be >= 1 and --vehicles between 1 and 1000")
    return Plan(
        node_counts=counts,
        rates=[float(r) for r in args.rates.split(",")],
        duration_s=args.duration,
        vehicles=args.vehicles,
        partitions=args.partitions,
        lease_ms=args.lease_ms,
        connections=args.connections,
        kill=args.kill,
        log_level=args.log_level,
    )


async def main() -> int:
    plan = parse_plan()
    log_dir = Path(tempfile.mkdtemp(prefix="sovd-bench-cluster-"))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; nodes, PostgreSQL, Redis "
        f"and the load generator share this machine; node logs in {log_dir}",
        flush=True,
    )
    print(f"machine speed: a fixed loop takes {machine_speed_s():.3f} s of CPU", flush=True)
    rows: list[Row] = []
    for count in plan.node_counts:
        rows += await bench_nodes(count, plan, log_dir)
    await clear_cluster_keys(REDIS_URL)
    for line in summary_lines(rows):
        print(line)
    lost = sum(row.never_finished for row in rows)
    if lost:
        print(f"LOST: {lost} accepted commands never finished")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
