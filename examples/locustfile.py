"""Load sovd-sim with locust (https://locust.io) instead of `sovd-sim loadtest`.

Each simulated user logs in, picks connected vehicles, and submits commands in the same mix
as `sovd-sim loadtest --mix` (same syntax, same default parameters: loadtest/mix.py); a
share of its commands is also followed on the command's WebSocket stream, reported to
locust as requests of type WS (time: POST to terminal event; size: events received).

    pip install locust websocket-client        # beside sovd-sim
    SOVD_LOADTEST_PASSWORD=<admin password> locust -f examples/locustfile.py \\
        --host http://127.0.0.1:8080 --users 50 --spawn-rate 10

Settings (environment): SOVD_LOCUST_USERNAME (admin), SOVD_LOADTEST_PASSWORD,
SOVD_LOCUST_MIX (ReadDTC:5,ReadDataByID:4,ClearDTC:1), SOVD_LOCUST_WS_FRACTION (0.1),
SOVD_LOCUST_VEHICLES (connected vehicles each user spreads its commands over, 20).

The WebSocket client is websocket-client: a blocking client whose socket calls, once
locust has monkey-patched the standard library with gevent, yield to the other users
exactly as the requests-based HttpUser client does. An asyncio client (aiohttp) would need
an event loop of its own per user, and a loop blocked in select() stalls gevent's hub.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from typing import Any

import websocket
from locust import HttpUser, between, task

from loadtest.mix import parse_mix

MIX = parse_mix(os.environ.get("SOVD_LOCUST_MIX", "ReadDTC:5,ReadDataByID:4,ClearDTC:1"))
WS_FRACTION = float(os.environ.get("SOVD_LOCUST_WS_FRACTION", "0.1"))
VEHICLES = int(os.environ.get("SOVD_LOCUST_VEHICLES", "20"))
TERMINAL = {"completed", "failed", "timed_out"}


class DiagnosticsUser(HttpUser):
    """A diagnostic client: submits commands, follows some of them to the end."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        response = self.client.post(
            "/api/v1/auth/login",
            json={
                "username": os.environ.get("SOVD_LOCUST_USERNAME", "admin"),
                "password": os.environ["SOVD_LOADTEST_PASSWORD"],
            },
            name="POST /api/v1/auth/login",
        )
        response.raise_for_status()
        self.token: str = response.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        listed = self.client.get(
            "/api/v1/vehicles",
            params={"status": "connected", "limit": "500"},
            name="GET /api/v1/vehicles",
        )
        listed.raise_for_status()
        chosen = random.sample(listed.json(), min(VEHICLES, len(listed.json())))
        self.targets: list[tuple[str, str]] = []
        for vehicle in chosen:
            detail = self.client.get(
                f"/api/v1/vehicles/{vehicle['vehicle_id']}", name="GET /api/v1/vehicles/{id}"
            )
            detail.raise_for_status()
            self.targets.append((vehicle["vehicle_id"], detail.json()["ecus"][0]["ecu_address"]))
        cycle = MIX.sequence()
        self.names = itertools.cycle(cycle[random.randrange(len(cycle)) :] + cycle)

    @task
    def submit_command(self) -> None:
        if not self.targets:
            return
        name = next(self.names)
        vehicle_id, ecu_address = random.choice(self.targets)
        body = {
            "vehicle_id": vehicle_id,
            "command_name": name,
            "command_params": MIX.params_for(name, ecu_address),
        }
        started = time.perf_counter()
        with self.client.post(
            "/api/v1/commands", json=body, name=f"POST /api/v1/commands {name}", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            command_id = response.json()["command_id"]
        if random.random() < WS_FRACTION:
            self.follow_stream(name, command_id, started)

    def follow_stream(self, name: str, command_id: str, started: float) -> None:
        ws_url = self.host.replace("http", "ws", 1) + f"/ws/responses/{command_id}"
        events = 0
        error: Exception | None = None
        try:
            connection = websocket.create_connection(f"{ws_url}?token={self.token}", timeout=60)
            try:
                while True:
                    event: dict[str, Any] = json.loads(connection.recv())
                    events += 1
                    if event.get("event") == "error" or event.get("status") in TERMINAL:
                        break
            finally:
                connection.close()
        except Exception as exc:  # reported to locust as a failed WS request
            error = exc
        self.environment.events.request.fire(
            request_type="WS",
            name=f"/ws/responses {name}",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=events,
            exception=error,
            context={},
        )
