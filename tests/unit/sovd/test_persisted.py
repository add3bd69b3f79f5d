from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from sovd.dids import REPAIR_SHOP_CODE
from sovd.persisted import restore_state, snapshot_of
from sovd.state import VehicleState
from sovd.uds import Session, encode_dtc


def test_what_commands_change_comes_back_the_same(vehicle: VehicleState, now: datetime) -> None:
    engine, brakes = vehicle.ecus[0x01], vehicle.ecus[0x03]
    engine.clear_dtcs(encode_dtc("P0420"))
    vehicle.record_fault(brakes, encode_dtc("C0040"), 0x09)
    engine.enter_session(Session.EXTENDED, timeout_s=120)
    engine.touch(now)
    engine.security.unlocked_level = 1
    engine.security.failed_attempts = 2
    engine.security.locked_until = now + timedelta(seconds=10)
    engine.written[REPAIR_SHOP_CODE] = "WS42"

    document = orjson.loads(orjson.dumps(snapshot_of(vehicle)))  # as the store keeps it
    again = restore_state(vehicle.identity, document, now + timedelta(hours=1))

    for address, ecu in vehicle.ecus.items():
        restored = again.ecus[address]
        assert restored.dtcs == ecu.dtcs, address
        assert restored.history == ecu.history, address
        assert restored.written == ecu.written
        assert restored.session == ecu.session
        assert restored.session_timeout_s == ecu.session_timeout_s
        assert restored.last_request_at == ecu.last_request_at
        assert restored.security.unlocked_level == ecu.security.unlocked_level
        assert restored.security.failed_attempts == ecu.security.failed_attempts
        assert restored.security.locked_until == ecu.security.locked_until


def test_a_snapshot_of_another_format_leaves_the_seeded_vehicle(
    vehicle: VehicleState, now: datetime
) -> None:
    vehicle.ecus[0x01].clear_dtcs()
    document = snapshot_of(vehicle) | {"format": 99}

    again = restore_state(vehicle.identity, document, now)

    assert again.ecus[0x01].dtcs != {}
