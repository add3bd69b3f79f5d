"""What a team building a diagnostic tool checks against simulated vehicles, with nothing
but the sovd_sim fixture."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sovd_sim_pytest import SovdSimClient

pytestmark = pytest.mark.sovd_sim(vehicles=2, seed=1, latency_ms=(1, 5))


async def engine_of_first_vehicle(sim: SovdSimClient) -> tuple[dict[str, Any], str]:
    vehicle = (await sim.vehicles())[0]
    ecus = (await sim.vehicle(vehicle))["ecus"]
    return vehicle, ecus[0]["ecu_address"]


async def test_read_dtc_lists_faults_in_the_documented_shape(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await engine_of_first_vehicle(sovd_sim)
    await sovd_sim.inject_fault(vehicle, ecu, "P0420")

    command = await sovd_sim.submit(vehicle, "ReadDTC", {"ecuAddress": ecu})
    done = await sovd_sim.wait(command["command_id"])

    assert done["status"] == "completed"
    payload = done["responses"][-1]["response_payload"]
    assert payload["ecuAddress"] == ecu
    assert "P0420" in [dtc["dtcCode"] for dtc in payload["dtcs"]]
    for dtc in payload["dtcs"]:
        assert re.fullmatch(r"[PCBU][0-9A-F]{4}", dtc["dtcCode"])
        assert re.fullmatch(r"0x[0-9A-F]{6}", dtc["udsDtc"])
        assert re.fullmatch(r"0x[0-9A-F]{2}", dtc["statusByte"])
        assert dtc["description"]
        assert len(dtc["status"]) == 8
        assert all(isinstance(bit, bool) for bit in dtc["status"].values())


async def test_clear_dtc_then_read_dtc_shows_none(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await engine_of_first_vehicle(sovd_sim)
    await sovd_sim.inject_fault(vehicle, ecu, "P0301")

    cleared = await sovd_sim.run(vehicle, "ClearDTC", {"ecuAddress": ecu})
    read = await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": ecu})

    assert cleared["status"] == "completed"
    assert cleared["responses"][-1]["response_payload"]["clearedCount"] >= 1
    assert read["responses"][-1]["response_payload"]["dtcs"] == []


@pytest.mark.sovd_sim(time_scale=0.05)
async def test_stream_events_arrive_in_order(sovd_sim: SovdSimClient) -> None:
    vehicle, ecu = await engine_of_first_vehicle(sovd_sim)
    command = await sovd_sim.submit(
        vehicle, "RoutineControl", {"ecuAddress": ecu, "routineId": "0x0203"}
    )

    events = [event async for event in sovd_sim.stream(command)]

    chunks = [event for event in events if event["event"] == "response"]
    assert [chunk["sequence_number"] for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert [chunk["is_final"] for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    assert events.index(chunks[-1]) < len(events) - 1
    terminal = events[-1]
    assert (terminal["event"], terminal["status"]) == ("status", "completed")
    assert (terminal["command_id"], terminal["vehicle_id"]) == (
        command["command_id"],
        vehicle["vehicle_id"],
    )
