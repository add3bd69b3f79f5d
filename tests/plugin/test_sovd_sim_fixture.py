"""The `sovd_sim` fixture, used the way a downstream project uses it: small test files run
by a pytest of their own (pytester, in a subprocess) with the plugin loaded from its entry
point, under pytest-asyncio's loop scopes and modes and beside pytest-aiohttp."""

from __future__ import annotations

import pytest

# The plain pytest-asyncio runs keep pytest-aiohttp (installed here) out of them.
WITHOUT_AIOHTTP = ("-p", "no:aiohttp")

HELPERS = """
import asyncio
import time
import urllib.request

import pytest

from sovd_sim_pytest import ApiError, SovdSimClient


async def first_ecu(sim: SovdSimClient) -> tuple[dict, str]:
    vehicle = (await sim.vehicles())[0]
    return vehicle, (await sim.vehicle(vehicle))["ecus"][0]["ecu_address"]


def dtc_codes(command: dict) -> list[str]:
    return [dtc["dtcCode"] for dtc in command["responses"][-1]["response_payload"]["dtcs"]]
"""

FEATURES = (
    HELPERS
    + """

SEEN = {}


async def test_a_small_default_fleet_and_an_admin(sovd_sim: SovdSimClient) -> None:
    assert len(await sovd_sim.vehicles()) == 3
    async with sovd_sim.session.get(sovd_sim.url + "/api/v1/auth/me") as response:
        me = await response.json()
    assert (me["username"], me["role"]) == (sovd_sim.username, "admin") == ("admin", "admin")
    SEEN["url"] = sovd_sim.url


async def test_the_previous_server_is_gone() -> None:
    with pytest.raises(OSError):
        urllib.request.urlopen(SEEN["url"] + "/healthz", timeout=5)


@pytest.mark.sovd_sim(vehicles=5, seed=7)
async def test_the_marker_sizes_the_fleet(sovd_sim: SovdSimClient) -> None:
    SEEN["seed 7"] = [v["vin"] for v in await sovd_sim.vehicles()]
    assert len(SEEN["seed 7"]) == 5


@pytest.mark.sovd_sim(vehicles=5, seed=7)
async def test_the_same_seed_gives_the_same_fleet(sovd_sim: SovdSimClient) -> None:
    assert [v["vin"] for v in await sovd_sim.vehicles()] == SEEN["seed 7"]


@pytest.mark.sovd_sim(vehicles=5, seed=8)
async def test_another_seed_another_fleet(sovd_sim: SovdSimClient) -> None:
    assert [v["vin"] for v in await sovd_sim.vehicles()] != SEEN["seed 7"]


@pytest.mark.sovd_sim(vehicles=4)
@pytest.mark.parametrize(
    ("sovd_sim", "count", "role"),
    [({"vehicles": 1}, 1, "admin"), ({"role": "engineer"}, 4, "engineer")],
    indirect=["sovd_sim"],
)
async def test_indirect_parameters_override_the_marker(
    sovd_sim: SovdSimClient, count: int, role: str
) -> None:
    assert len(await sovd_sim.vehicles()) == count
    async with sovd_sim.session.get(sovd_sim.url + "/api/v1/auth/me") as response:
        assert (await response.json())["role"] == role == sovd_sim.role


@pytest.mark.sovd_sim(role="engineer")
async def test_an_engineer_is_not_an_admin(sovd_sim: SovdSimClient) -> None:
    async with sovd_sim.session.get(sovd_sim.url + "/api/v1/audit-logs") as response:
        assert response.status == 403


async def test_submit_stream_and_wait(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    command = await sovd_sim.submit(vehicle, "ReadDTC", {"ecuAddress": ecu})
    assert command["status"] == "pending"

    events = [event async for event in sovd_sim.stream(command)]
    done = await sovd_sim.wait(command["command_id"])

    assert events[-1]["event"] == "status" and events[-1]["status"] == "completed"
    responses = [e for e in events if e["event"] == "response"]
    assert [e["sequence_number"] for e in responses] == [1]
    assert done["status"] == "completed" and done["command_name"] == "ReadDTC"
    assert done["responses"][0]["response_payload"] == responses[0]["response_payload"]


@pytest.mark.sovd_sim(time_scale=0.05)
async def test_a_streaming_command_streams_its_chunks(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    command = await sovd_sim.submit(
        vehicle, "RoutineControl", {"ecuAddress": ecu, "routineId": "0x0203"}
    )
    events = [event async for event in sovd_sim.stream(command, timeout_s=60)]
    chunks = [e for e in events if e["event"] == "response"]
    assert len(chunks) > 1
    assert [e["sequence_number"] for e in chunks] == list(range(1, len(chunks) + 1))
    assert [e["is_final"] for e in chunks] == [False] * (len(chunks) - 1) + [True]


async def test_an_injected_fault_is_read_then_cleared(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    await sovd_sim.inject_fault(vehicle, ecu, "P0301", status=0x09)

    read = await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": ecu})
    assert "P0301" in dtc_codes(read)
    await sovd_sim.run(vehicle, "ClearDTC", {"ecuAddress": ecu})
    again = await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": ecu})

    assert dtc_codes(again) == []


async def test_fault_injection_names_what_is_wrong(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    with pytest.raises(ValueError, match="no ECU at 0x77"):
        await sovd_sim.inject_fault(vehicle, "0x77", "P0301")
    with pytest.raises(ValueError, match="SAE J2012"):
        await sovd_sim.inject_fault(vehicle, ecu, "P9999")


@pytest.mark.sovd_sim(latency_ms=(0, 0))
async def test_set_latency_slows_the_next_commands(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    await sovd_sim.set_latency(400, 400)
    started = time.monotonic()
    done = await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": ecu})
    assert done["status"] == "completed"
    assert time.monotonic() - started >= 0.4


async def test_a_rejected_command_raises_the_problem(sovd_sim: SovdSimClient) -> None:
    vehicle, _ = await first_ecu(sovd_sim)
    with pytest.raises(ApiError) as rejected:
        await sovd_sim.submit(vehicle, "Teleport", {})
    assert rejected.value.status == 422


async def test_synchronous_code_under_test_reaches_the_server(sovd_sim: SovdSimClient) -> None:
    with urllib.request.urlopen(sovd_sim.url + "/healthz", timeout=5) as response:
        assert response.status == 200


@pytest.mark.sovd_sim(fleet="fleets/two.toml", latency_ms=(1, 2))
async def test_a_fleet_file_next_to_the_test(sovd_sim: SovdSimClient) -> None:
    vehicles = await sovd_sim.vehicles()
    assert [(v["make"], v["metadata"]["fleet"]) for v in vehicles] == [("Ford", "trucks")] * 2


@pytest.mark.sovd_sim(vehicles=0)
async def test_bad_count(sovd_sim: SovdSimClient) -> None:
    pass


@pytest.mark.sovd_sim(colour="red")
async def test_unknown_setting(sovd_sim: SovdSimClient) -> None:
    pass


@pytest.mark.sovd_sim(fleet="fleets/two.toml", vehicles=3)
async def test_fleet_and_vehicles(sovd_sim: SovdSimClient) -> None:
    pass


@pytest.mark.sovd_sim(fleet="fleets/broken.toml")
async def test_broken_fleet_file(sovd_sim: SovdSimClient) -> None:
    pass
"""
)

TWO_TRUCKS = """
[[fleets]]
name = "trucks"
count = 2
profile = "ford-f150"
"""
BROKEN = """
[[fleets]]
name = "trucks"
count = -2
profile = "ford-f150"
"""

LOOP_SCOPED = (
    HELPERS
    + """

@pytest.mark.asyncio
@pytest.mark.sovd_sim(vehicles=2)
async def test_one(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    assert (await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": ecu}))["status"] == "completed"


@pytest.mark.asyncio
async def test_two(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await first_ecu(sovd_sim)
    assert (await sovd_sim.run(vehicle, "ClearDTC", {"ecuAddress": ecu}))["status"] == "completed"
"""
)

WITH_AIOHTTP = '''
from aiohttp import ClientSession, web

from sovd_sim_pytest import SovdSimClient


def diagnostic_app(simulator_url: str, token: str) -> web.Application:
    """A downstream app under test: it lists the simulator's vehicles for its own users."""

    async def vehicle_count(request: web.Request) -> web.Response:
        headers = {"Authorization": f"Bearer {token}"}
        async with ClientSession(headers=headers) as session:
            async with session.get(simulator_url + "/api/v1/vehicles") as response:
                return web.json_response({"count": len(await response.json())})

    app = web.Application()
    app.router.add_get("/count", vehicle_count)
    return app


async def test_an_app_under_test_uses_the_simulator(aiohttp_client, sovd_sim: SovdSimClient):
    client = await aiohttp_client(diagnostic_app(sovd_sim.url, sovd_sim.token))
    response = await client.get("/count")
    assert await response.json() == {"count": 3}
'''

MISMATCHED = """
import pytest


@pytest.mark.asyncio(loop_scope="function")
async def test_on_another_loop(sovd_sim) -> None:
    await sovd_sim.vehicles()
"""


def ini(mode: str, loop_scope: str, test_loop_scope: str | None = None) -> str:
    return (
        "[pytest]\n"
        f"asyncio_mode = {mode}\n"
        f"asyncio_default_fixture_loop_scope = {loop_scope}\n"
        f"asyncio_default_test_loop_scope = {test_loop_scope or loop_scope}\n"
    )


def test_the_fixture_and_its_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("auto", "function"))
    pytester.makepyfile(test_features=FEATURES)
    fleets = pytester.mkdir("fleets")
    (fleets / "two.toml").write_text(TWO_TRUCKS)
    (fleets / "broken.toml").write_text(BROKEN)

    result = pytester.runpytest_subprocess(*WITHOUT_AIOHTTP, "-p", "no:cacheprovider")

    result.assert_outcomes(passed=16, errors=4)
    result.stdout.fnmatch_lines_random(
        [
            "sovd_sim: vehicles must be >= 1, got 0",
            "sovd_sim: unknown setting colour; known: vehicles, seed,*",
            "sovd_sim: vehicles and fleet exclude each other*",
            "sovd_sim: *broken.toml: fleets[[]0[]].count: must be >= 0, got -2",
        ]
    )


@pytest.mark.parametrize("loop_scope", ["module", "session"])
def test_strict_mode_on_a_wider_loop_scope(pytester: pytest.Pytester, loop_scope: str) -> None:
    pytester.makeini(ini("strict", loop_scope))
    pytester.makepyfile(test_scoped=LOOP_SCOPED)

    result = pytester.runpytest_subprocess(*WITHOUT_AIOHTTP, "-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)


def test_beside_pytest_aiohttp(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("auto", "function"))
    pytester.makepyfile(test_app=WITH_AIOHTTP)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_a_test_on_another_loop_than_the_fixture_is_told_why(pytester: pytest.Pytester) -> None:
    pytester.makeini(ini("strict", "session", "function"))
    pytester.makepyfile(test_mismatch=MISMATCHED)

    result = pytester.runpytest_subprocess(*WITHOUT_AIOHTTP, "-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the sovd_sim fixture was set up on another*"])
