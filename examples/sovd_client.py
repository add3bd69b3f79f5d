"""A small SOVD client that speaks only the standard's resources (ASAM SOVD / ISO 17978).

Given a vehicle's SOVD server (`/vehicles/{vehicle_id}/sovd`) it starts at `version-info`,
follows the links it is given, lists the components, reads each one's faults and the VIN,
clears the faults of the first component that has any, and runs its self-test to the end.

    python examples/sovd_client.py http://127.0.0.1:8080 admin <password> [vehicle_id]

Without a vehicle id it takes the first vehicle `/api/v1/vehicles` lists (the one call
outside SOVD, only to find a vehicle); the sign-in is `/api/v1/auth/login`, as SOVD leaves
authentication to the server.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

POLL_S = 0.5


class SovdError(Exception):
    """A SOVD error body: `{error_code, message, vendor_code?, parameters?}`."""


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **options: Any
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with session.request(method, url, **options) as response:
        body = await response.json() if response.content_type == "application/json" else None
        if response.status >= 400:
            raise SovdError(f"{method} {url}: {response.status} {body}")
        return response.status, body, response.headers


async def sign_in(session: aiohttp.ClientSession, base: str, user: str, password: str) -> None:
    _, tokens, _ = await fetch(
        session, "POST", f"{base}/api/v1/auth/login", json={"username": user, "password": password}
    )
    session.headers["Authorization"] = f"Bearer {tokens['access_token']}"


async def run_self_test(session: aiohttp.ClientSession, component: dict[str, Any]) -> None:
    _, operations, _ = await fetch(session, "GET", component["operations"])
    self_test = next((op for op in operations["items"] if op["id"] == "self-test"), None)
    if self_test is None:
        print("  no self-test on this component")
        return
    executions = f"{component['operations']}/self-test/executions"
    status, started, headers = await fetch(session, "POST", executions, json={})
    location = headers.get("Location") or f"{executions}/{started['id']}"
    print(f"  self-test started ({status}): {location}")
    while True:
        _, execution, _ = await fetch(session, "GET", location)
        print(f"  self-test {execution['status']}, {execution.get('progress', 0)} %")
        if execution["status"] != "running":
            print(f"  result: {execution.get('parameters') or execution.get('error')}")
            return
        await asyncio.sleep(POLL_S)


async def main(base: str, user: str, password: str, vehicle_id: str | None) -> None:
    async with aiohttp.ClientSession() as session:
        await sign_in(session, base, user, password)
        if vehicle_id is None:
            _, vehicles, _ = await fetch(session, "GET", f"{base}/api/v1/vehicles?limit=1")
            vehicle_id = vehicles[0]["vehicle_id"]
        _, info, _ = await fetch(session, "GET", f"{base}/vehicles/{vehicle_id}/sovd/version-info")
        root_uri = info["sovd_info"][0]["base_uri"]
        print(f"SOVD {info['sovd_info'][0]['version']} at {root_uri}")
        _, root, _ = await fetch(session, "GET", root_uri)
        _, components, _ = await fetch(session, "GET", root["components"])
        cleared = False
        for reference in components["items"]:
            _, component, _ = await fetch(session, "GET", reference["href"])
            _, faults, _ = await fetch(session, "GET", component["faults"])
            codes = [f"{f['display_code']} ({f['fault_name']})" for f in faults["items"]]
            print(f"{component['id']}: {len(codes)} faults {codes}")
            if not cleared and codes:
                await fetch(session, "DELETE", component["faults"])
                _, left, _ = await fetch(session, "GET", component["faults"])
                print(f"  cleared; {len(left['items'])} left")
                await run_self_test(session, component)
                cleared = True
        first = components["items"][0]["href"]
        _, vin, _ = await fetch(session, "GET", f"{first}/data/vin")
        print(f"VIN: {vin['data']['vin']}")
        if not cleared:
            _, component, _ = await fetch(session, "GET", first)
            await run_self_test(session, component)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(
        main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else None)
    )
