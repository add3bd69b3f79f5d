"""Every built-in command: success, state change, negative replies, parameter errors, and
the raw UDS bytes decoded by an independent library (udsoncan) against the readable form."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import udsoncan
from udsoncan import Response, services

from sovd.commands import COMMANDS, KEY_LOCKOUT, security_key
from sovd.errors import InvalidParams
from sovd.execution import Chunk
from sovd.state import VehicleState
from sovd.uds import Session

RunOne = Callable[..., Chunk]


def uds(chunk: Chunk) -> Response:
    response = Response.from_payload(bytes.fromhex(chunk.payload["udsResponse"]))
    assert response.valid, response.invalid_reason
    return response


def assert_negative(chunk: Chunk, service: type[Any], nrc: int, name: str) -> None:
    response = uds(chunk)
    assert not response.positive
    assert response.service is service
    assert response.code == nrc
    assert chunk.is_final
    assert chunk.error == f"NRC 0x{nrc:02X} {name}"
    assert chunk.payload["negativeResponse"] == {
        "service": f"0x{service._sid:02X}",
        "serviceName": service.__name__,
        "nrc": f"0x{nrc:02X}",
        "nrcName": name,
    }


def unlock(run_one: RunOne, ecu: str = "0x01", level: int = 1) -> None:
    run_one("DiagnosticSessionControl", ecuAddress=ecu, session="extended")
    seed = run_one("SecurityAccess", ecuAddress=ecu, level=level).payload["seed"]
    key = security_key(bytes.fromhex(seed[2:])).hex()
    assert run_one("SecurityAccess", ecuAddress=ecu, level=level, key=f"0x{key}").payload[
        "unlocked"
    ]


# ReadDTC ---------------------------------------------------------------------------------


def test_read_dtc_lists_the_stored_faults_of_one_ecu(run_one: RunOne) -> None:
    chunk = run_one("ReadDTC", ecuAddress="0x01")

    payload = chunk.payload
    assert payload["ecuAddress"] == "0x01"
    assert payload["ecuName"] == "Engine Control Module"
    assert payload["dtcCount"] == 2
    by_code = {dtc["dtcCode"]: dtc for dtc in payload["dtcs"]}
    assert set(by_code) == {"P0171", "P0420"}
    assert by_code["P0420"] == {
        "dtcCode": "P0420",
        "description": "Catalyst System Efficiency Below Threshold (Bank 1)",
        "udsDtc": "0x042000",
        "status": {
            "testFailed": True,
            "testFailedThisOperationCycle": True,
            "pendingDTC": True,
            "confirmedDTC": True,
            "testNotCompletedSinceLastClear": False,
            "testFailedSinceLastClear": True,
            "testNotCompletedThisOperationCycle": False,
            "warningIndicatorRequested": False,
        },
        "statusByte": "0x2F",
    }


def test_read_dtc_bytes_decode_to_the_readable_form(run_one: RunOne) -> None:
    chunk = run_one("ReadDTC", ecuAddress="0x19")

    response = uds(chunk)
    services.ReadDTCInformation.interpret_response(
        response, subfunction=services.ReadDTCInformation.Subfunction.reportDTCByStatusMask
    )
    data = response.service_data
    assert data.status_availability.get_byte_as_int() == int(
        chunk.payload["statusAvailabilityMask"], 16
    )
    readable = chunk.payload["dtcs"]
    assert len(data.dtcs) == len(readable) == 1
    for decoded, shown in zip(data.dtcs, readable, strict=True):
        assert decoded.id_iso() == f"{shown['dtcCode']}-00"
        assert decoded.id == int(shown["udsDtc"], 16)
        assert decoded.status.get_byte_as_int() == int(shown["statusByte"], 16)
        bits = shown["status"]
        assert decoded.status.test_failed == bits["testFailed"]
        assert decoded.status.pending == bits["pendingDTC"]
        assert decoded.status.confirmed == bits["confirmedDTC"]
        assert decoded.status.warning_indicator_requested == bits["warningIndicatorRequested"]


def test_read_dtc_filters_by_status_mask(run_one: RunOne) -> None:
    confirmed = run_one("ReadDTC", ecuAddress="0x01", statusMask="0x08").payload

    assert [dtc["dtcCode"] for dtc in confirmed["dtcs"]] == ["P0420"]
    assert confirmed["statusMask"] == "0x08"


def test_read_dtc_of_an_ecu_without_faults_is_an_empty_positive_reply(run_one: RunOne) -> None:
    chunk = run_one("ReadDTC", ecuAddress="0x17")

    assert chunk.payload["dtcs"] == []
    assert chunk.payload["udsResponse"] == "5902FF"
    assert chunk.error is None


# ClearDTC --------------------------------------------------------------------------------


def test_clear_dtc_really_clears_and_read_dtc_shows_it(
    run_one: RunOne, vehicle: VehicleState
) -> None:
    cleared = run_one("ClearDTC", ecuAddress="0x01")

    assert cleared.payload == {
        "ecuAddress": "0x01",
        "cleared": "all",
        "clearedCount": 2,
        "remainingCount": 0,
        "udsResponse": "54",
    }
    assert uds(cleared).service is services.ClearDiagnosticInformation
    assert run_one("ReadDTC", ecuAddress="0x01").payload["dtcs"] == []
    assert vehicle.ecus[0x03].dtcs, "other ECUs keep their faults"


def test_clear_dtc_can_clear_one_code(run_one: RunOne) -> None:
    cleared = run_one("ClearDTC", ecuAddress="0x01", dtcCode="P0171")

    assert cleared.payload["cleared"] == "P0171"
    assert cleared.payload["clearedCount"] == 1
    remaining = run_one("ReadDTC", ecuAddress="0x01").payload["dtcs"]
    assert [dtc["dtcCode"] for dtc in remaining] == ["P0420"]


def test_clear_dtc_of_an_absent_code_clears_nothing(run_one: RunOne) -> None:
    assert run_one("ClearDTC", ecuAddress="0x01", dtcCode="P0300").payload["clearedCount"] == 0


def test_clear_dtc_of_a_code_without_uds_form_is_out_of_range(run_one: RunOne) -> None:
    chunk = run_one("ClearDTC", ecuAddress="0x01", dtcCode="P4420")

    assert_negative(chunk, services.ClearDiagnosticInformation, 0x31, "requestOutOfRange")


# ReadDTCDetails --------------------------------------------------------------------------

# Every extended data record is four bytes: counters (occurrence, aging), first and last
# occurrence (Unix time).
EXTENDED_RECORD_SIZE = 4


def test_dtc_details_give_the_snapshot_and_the_extended_data(
    run: Callable[..., list[Any]], vehicle: VehicleState, now: datetime
) -> None:
    snapshot, extended = run("ReadDTCDetails", ecuAddress="0x01", dtcCode="P0420")

    assert (snapshot.is_final, extended.is_final) == (False, True)
    record = vehicle.ecus[0x01].history[0x042000]
    for chunk in (snapshot, extended):
        assert chunk.payload["dtcCode"] == "P0420"
        assert chunk.payload["udsDtc"] == "0x042000"
        assert chunk.payload["statusByte"] == "0x2F"
        assert chunk.payload["status"]["confirmedDTC"] is True
    identifiers = snapshot.payload["snapshot"]["identifiers"]
    assert snapshot.payload["snapshot"]["recordNumber"] == 1
    assert [int(i["dataId"], 16) for i in identifiers] == list(record.snapshot)
    assert {int(i["dataId"], 16): i["value"] for i in identifiers} == record.snapshot
    data = extended.payload["extendedData"]
    assert data["occurrenceCounter"] == record.occurrences >= 1
    assert data["agingCounter"] == 0
    first, last = (datetime.fromisoformat(data[k]) for k in ("firstOccurrence", "lastOccurrence"))
    assert first <= last <= now


def test_dtc_snapshot_bytes_decode_with_udsoncan(run: Callable[..., list[Any]]) -> None:
    snapshot, _ = run("ReadDTCDetails", ecuAddress="0x01", dtcCode="P0420")

    response = uds(snapshot)
    formats = {did: fmt for did, (fmt, _, _) in OBD_SCALING.items()}
    services.ReadDTCInformation.interpret_response(
        response,
        services.ReadDTCInformation.Subfunction.reportDTCSnapshotRecordByDTCNumber,
        didconfig=formats,
    )
    (dtc,) = response.service_data.dtcs
    assert dtc.id == 0x042000
    assert dtc.status.get_byte_as_int() == 0x2F
    identifiers = snapshot.payload["snapshot"]["identifiers"]
    readable = {int(i["dataId"], 16): i["value"] for i in identifiers}
    assert [entry.record_number for entry in dtc.snapshots] == [1] * len(readable)
    decoded = {}
    for entry in dtc.snapshots:
        _, resolution, offset = OBD_SCALING[entry.did]
        (raw,) = entry.data
        decoded[entry.did] = raw * resolution + offset
    assert list(decoded) == list(readable)
    for did, value in readable.items():
        assert decoded[did] == pytest.approx(value, abs=0.01)


def test_dtc_extended_data_bytes_decode_with_udsoncan(run: Callable[..., list[Any]]) -> None:
    _, extended = run("ReadDTCDetails", ecuAddress="0x01", dtcCode="P0171")

    response = uds(extended)
    services.ReadDTCInformation.interpret_response(
        response,
        services.ReadDTCInformation.Subfunction.reportDTCExtendedDataRecordByDTCNumber,
        extended_data_size=EXTENDED_RECORD_SIZE,
    )
    (dtc,) = response.service_data.dtcs
    assert dtc.id == 0x017100
    assert dtc.status.get_byte_as_int() == 0x24
    records = {e.record_number: e.raw_data for e in dtc.extended_data}
    assert set(records) == {0x01, 0x02, 0x03}
    data = extended.payload["extendedData"]
    assert struct.unpack(">HH", records[0x01]) == (
        data["occurrenceCounter"],
        data["agingCounter"],
    )
    for number, key in ((0x02, "firstOccurrence"), (0x03, "lastOccurrence")):
        stamp = int(datetime.fromisoformat(data[key]).timestamp())
        assert int.from_bytes(records[number], "big") == stamp


@pytest.mark.parametrize("code", ["P0300", "P4420"])
def test_dtc_details_of_a_fault_not_stored_are_out_of_range(run_one: RunOne, code: str) -> None:
    chunk = run_one("ReadDTCDetails", ecuAddress="0x01", dtcCode=code)

    assert_negative(chunk, services.ReadDTCInformation, 0x31, "requestOutOfRange")


def test_a_cleared_fault_has_no_details(run_one: RunOne) -> None:
    run_one("ClearDTC", ecuAddress="0x01", dtcCode="P0420")

    chunk = run_one("ReadDTCDetails", ecuAddress="0x01", dtcCode="P0420")

    assert_negative(chunk, services.ReadDTCInformation, 0x31, "requestOutOfRange")


# ReadDataByID ----------------------------------------------------------------------------


class AllAscii(udsoncan.DidCodec):
    def decode(self, data: bytes) -> Any:
        return data.decode("ascii")

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


class BcdDate(udsoncan.DidCodec):
    def decode(self, data: bytes) -> Any:
        yy, mm, dd = (int(f"{byte:02X}") for byte in data)
        return f"{2000 + yy:04d}-{mm:02d}-{dd:02d}"

    def __len__(self) -> int:
        return 3


# SAE J1979 scaling of the OBD PIDs behind 0xF4xx: struct format, resolution, offset.
OBD_SCALING = {
    0xF405: (">B", 1, -40),
    0xF40C: (">H", 0.25, 0),
    0xF40D: (">B", 1, 0),
    0xF42F: (">B", 100 / 255, 0),
    0xF442: (">H", 0.001, 0),
    0xF446: (">B", 1, -40),
    0xF4A6: (">I", 0.1, 0),
}
TEXT_DIDS = (0xF187, 0xF18A, 0xF18C, 0xF190, 0xF191, 0xF195, 0xF197, 0xF198)


@pytest.mark.parametrize(("ecu", "did"), [("0x01", did) for did in TEXT_DIDS])
def test_read_text_dids_round_trip_through_udsoncan(run_one: RunOne, ecu: str, did: int) -> None:
    chunk = run_one("ReadDataByID", ecuAddress=ecu, dataId=f"0x{did:04X}")

    response = uds(chunk)
    services.ReadDataByIdentifier.interpret_response(response, did, {did: AllAscii()})
    decoded = response.service_data.values[did]
    assert decoded.rstrip(" ") == chunk.payload["value"]
    assert decoded.encode("ascii").hex().upper() == chunk.payload["raw"]


@pytest.mark.parametrize(
    ("ecu", "did"),
    [
        ("0x01", 0xF405),
        ("0x01", 0xF40C),
        ("0x01", 0xF40D),
        ("0x01", 0xF442),
        ("0x01", 0xF446),
        ("0x17", 0xF4A6),
        ("0x17", 0xF42F),
    ],
)
def test_read_live_dids_round_trip_through_udsoncan(run_one: RunOne, ecu: str, did: int) -> None:
    chunk = run_one("ReadDataByID", ecuAddress=ecu, dataId=f"0x{did:04X}")

    fmt, resolution, offset = OBD_SCALING[did]
    response = uds(chunk)
    services.ReadDataByIdentifier.interpret_response(response, did, {did: fmt})
    (raw_value,) = response.service_data.values[did]
    assert chunk.payload["value"] == pytest.approx(raw_value * resolution + offset, abs=0.05)
    assert struct.pack(fmt, raw_value).hex().upper() == chunk.payload["raw"]


def test_read_vin_gives_this_vehicles_vin(run_one: RunOne, vehicle: VehicleState) -> None:
    chunk = run_one("ReadDataByID", ecuAddress="0x01", dataId="0xF190")

    assert chunk.payload == {
        "ecuAddress": "0x01",
        "dataId": "0xF190",
        "description": "Vehicle Identification Number",
        "value": vehicle.identity.vin,
        "unit": None,
        "raw": vehicle.identity.vin.encode().hex().upper(),
        "udsResponse": "62F190" + vehicle.identity.vin.encode().hex().upper(),
    }


def test_read_dates_decode_as_bcd(run_one: RunOne) -> None:
    chunk = run_one("ReadDataByID", ecuAddress="0x03", dataId="0xF18B")

    response = uds(chunk)
    services.ReadDataByIdentifier.interpret_response(response, 0xF18B, {0xF18B: BcdDate()})
    assert response.service_data.values[0xF18B] == chunk.payload["value"]


def test_active_session_did_follows_session_control(run_one: RunOne) -> None:
    assert run_one("ReadDataByID", ecuAddress="0x01", dataId="0xF186").payload["value"] == (
        "default"
    )
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    chunk = run_one("ReadDataByID", ecuAddress="0x01", dataId="0xF186")
    assert chunk.payload["value"] == "extended"
    assert chunk.payload["raw"] == "03"


def test_live_values_drift_within_their_range(
    run: Callable[..., list[Any]], vehicle: VehicleState
) -> None:
    start = vehicle.now
    readings = []
    for minute in range(0, 120, 5):
        (chunk,) = run(
            "ReadDataByID", at=start + timedelta(minutes=minute), ecuAddress="0x17", dataId="0xF4A6"
        )
        readings.append(chunk.payload["value"])
    (rpm,) = run("ReadDataByID", at=start + timedelta(hours=3), ecuAddress="0x01", dataId="0xF40C")

    assert readings == sorted(readings), "the odometer never runs backwards"
    assert readings[-1] > readings[0]
    assert 0 <= rpm.payload["value"] <= 6500


@pytest.mark.parametrize(
    ("ecu", "did"),
    [
        ("0x01", "0x1234"),  # not a DID this simulator knows
        ("0x09", "0xF40C"),  # the body computer has no engine speed
        ("0x01", "0xF4A6"),  # the engine ECU does not keep the odometer
    ],
)
def test_unknown_did_is_request_out_of_range(run_one: RunOne, ecu: str, did: str) -> None:
    chunk = run_one("ReadDataByID", ecuAddress=ecu, dataId=did)

    assert_negative(chunk, services.ReadDataByIdentifier, 0x31, "requestOutOfRange")
    assert chunk.payload["udsResponse"] == "7F2231"
    assert chunk.payload["ecuAddress"] == ecu


# WriteDataByID ---------------------------------------------------------------------------


def test_write_outside_extended_session_is_not_supported_in_active_session(
    run_one: RunOne,
) -> None:
    chunk = run_one("WriteDataByID", ecuAddress="0x01", dataId="0xF198", value="WS-0042")

    assert_negative(
        chunk, services.WriteDataByIdentifier, 0x7F, "serviceNotSupportedInActiveSession"
    )


def test_write_in_extended_session_changes_what_is_read(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    written = run_one("WriteDataByID", ecuAddress="0x01", dataId="0xF198", value="WS-0042")

    response = uds(written)
    services.WriteDataByIdentifier.interpret_response(response)
    assert response.service_data.did_echo == 0xF198
    assert written.payload["value"] == "WS-0042"
    assert written.payload["raw"] == b"WS-0042   ".hex().upper()
    read = run_one("ReadDataByID", ecuAddress="0x01", dataId="0xF198")
    assert read.payload["value"] == "WS-0042"


def test_write_a_date(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x17", session="extended")

    written = run_one("WriteDataByID", ecuAddress="0x17", dataId="0xF199", value="2025-03-14")

    assert written.payload["raw"] == "250314"
    assert run_one("ReadDataByID", ecuAddress="0x17", dataId="0xF199").payload["value"] == (
        "2025-03-14"
    )


def test_write_vin_needs_security_access(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    new_vin = "WVWZZZ1KZAW000001"

    denied = run_one("WriteDataByID", ecuAddress="0x01", dataId="0xF190", value=new_vin)
    assert_negative(denied, services.WriteDataByIdentifier, 0x33, "securityAccessDenied")

    unlock(run_one)
    assert run_one("WriteDataByID", ecuAddress="0x01", dataId="0xF190", value=new_vin).error is None
    read = run_one("ReadDataByID", ecuAddress="0x01", dataId="0xF190")
    assert read.payload["value"] == new_vin


@pytest.mark.parametrize(
    ("did", "value", "nrc", "name"),
    [
        ("0xF40C", 800, 0x31, "requestOutOfRange"),  # live values are read-only
        ("0xF187", "X", 0x31, "requestOutOfRange"),  # so is the part number
        ("0x1234", "X", 0x31, "requestOutOfRange"),  # unknown DID
        ("0xF199", "14.03.2025", 0x31, "requestOutOfRange"),  # not a date
        ("0xF198", 42, 0x31, "requestOutOfRange"),  # a number for a text DID
        ("0xF198", "ABCDEFGHIJK", 0x13, "incorrectMessageLengthOrInvalidFormat"),
    ],
)
def test_invalid_writes_are_rejected_as_uds_says(
    run_one: RunOne, did: str, value: Any, nrc: int, name: str
) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    chunk = run_one("WriteDataByID", ecuAddress="0x01", dataId=did, value=value)

    assert_negative(chunk, services.WriteDataByIdentifier, nrc, name)


# ECUReset --------------------------------------------------------------------------------


def test_ecu_reset_returns_to_default_session_locked(
    run_one: RunOne, vehicle: VehicleState
) -> None:
    unlock(run_one)

    chunk = run_one("ECUReset", ecuAddress="0x01", resetType="softReset")

    response = uds(chunk)
    services.ECUReset.interpret_response(response)
    assert response.service_data.reset_type_echo == 0x03
    assert chunk.payload["resetType"] == "softReset"
    ecu = vehicle.ecus[0x01]
    assert ecu.session == Session.DEFAULT
    assert ecu.security.unlocked_level is None


def test_ecu_reset_starts_a_new_operation_cycle(run_one: RunOne) -> None:
    run_one("ECUReset", ecuAddress="0x01")

    p0420 = next(
        dtc
        for dtc in run_one("ReadDTC", ecuAddress="0x01").payload["dtcs"]
        if dtc["dtcCode"] == "P0420"
    )
    assert p0420["status"]["testFailedThisOperationCycle"] is False
    assert p0420["status"]["testNotCompletedThisOperationCycle"] is True
    assert p0420["status"]["confirmedDTC"] is True


def test_ecu_reset_defaults_to_hard_reset(run_one: RunOne) -> None:
    assert run_one("ECUReset", ecuAddress="0x01").payload["udsResponse"] == "5101"


# DiagnosticSessionControl ----------------------------------------------------------------


def test_session_control_reports_the_timing_parameters(run_one: RunOne) -> None:
    chunk = run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    response = uds(chunk)
    services.DiagnosticSessionControl.interpret_response(response)
    data = response.service_data
    assert data.session_echo == 0x03
    assert data.p2_server_max * 1000 == chunk.payload["p2ServerMaxMs"] == 50
    assert data.p2_star_server_max * 1000 == chunk.payload["p2StarServerMaxMs"] == 5000
    assert chunk.payload["session"] == "extended"


def test_programming_session_only_from_extended(run_one: RunOne) -> None:
    refused = run_one("DiagnosticSessionControl", ecuAddress="0x01", session="programming")
    assert_negative(
        refused,
        services.DiagnosticSessionControl,
        0x7E,
        "subFunctionNotSupportedInActiveSession",
    )

    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    entered = run_one("DiagnosticSessionControl", ecuAddress="0x01", session="programming")
    assert entered.payload["sessionType"] == "0x02"


def test_safety_system_session_is_not_supported(run_one: RunOne) -> None:
    chunk = run_one("DiagnosticSessionControl", ecuAddress="0x01", session="safetySystem")

    assert_negative(chunk, services.DiagnosticSessionControl, 0x12, "subFunctionNotSupported")


def test_changing_session_relocks_security(run_one: RunOne, vehicle: VehicleState) -> None:
    unlock(run_one)
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    assert vehicle.ecus[0x01].security.unlocked_level == 1, "same session keeps the unlock"

    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="default")

    assert vehicle.ecus[0x01].security.unlocked_level is None


# The session timer (S3) ------------------------------------------------------------------


def session_of(run: Callable[..., list[Any]], at: datetime, ecu: str = "0x01") -> Any:
    (chunk,) = run("ReadDataByID", at=at, ecuAddress=ecu, dataId="0xF186")
    return chunk.payload["value"]


def test_a_session_ends_after_its_timeout_without_requests_and_security_relocks(
    run: Callable[..., list[Any]], run_one: RunOne, vehicle: VehicleState, now: datetime
) -> None:
    unlock(run_one)
    entered = run_one(
        "DiagnosticSessionControl", ecuAddress="0x01", session="extended", sessionTimeoutS=5
    )
    assert entered.payload["sessionTimeoutS"] == 5
    assert vehicle.ecus[0x01].security.unlocked_level == 1

    assert session_of(run, now + timedelta(seconds=5.5)) == "default"
    assert vehicle.ecus[0x01].session == Session.DEFAULT
    assert vehicle.ecus[0x01].security.unlocked_level is None


def test_requests_to_the_ecu_keep_its_session_alive(
    run: Callable[..., list[Any]], run_one: RunOne, now: datetime
) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended", sessionTimeoutS=5)

    for seconds in (4, 8, 12, 16):
        assert session_of(run, now + timedelta(seconds=seconds)) == "extended"
    assert session_of(run, now + timedelta(seconds=21.5)) == "default"


def test_requests_to_another_ecu_do_not_keep_a_session_alive(
    run: Callable[..., list[Any]], run_one: RunOne, vehicle: VehicleState, now: datetime
) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended", sessionTimeoutS=5)

    assert session_of(run, now + timedelta(seconds=4), ecu="0x03") == "default"
    assert vehicle.ecus[0x01].session == Session.EXTENDED
    session_of(run, now + timedelta(seconds=6), ecu="0x03")

    assert vehicle.ecus[0x01].session == Session.DEFAULT


def test_without_a_timeout_the_session_lasts_the_profiles_s3_time(
    run: Callable[..., list[Any]], run_one: RunOne, vehicle: VehicleState, now: datetime
) -> None:
    s3 = vehicle.ecus[0x01].profile.session_timeout_s
    entered = run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    assert entered.payload["sessionTimeoutS"] == s3
    assert session_of(run, now + timedelta(seconds=s3 - 1)) == "extended"
    assert session_of(run, now + timedelta(seconds=2 * s3)) == "default"


# SecurityAccess --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "key"),
    [
        # Worked by hand from the README's rule, not with the code under test.
        ("11223344", "58F52D2A"),
        ("00000000", "D1E4B70A"),
        ("FFFFFFFF", "2E1B48F5"),
    ],
)
def test_security_key_matches_the_published_vectors(seed: str, key: str) -> None:
    assert security_key(bytes.fromhex(seed)) == bytes.fromhex(key)


def test_seed_and_key_unlock(run_one: RunOne, vehicle: VehicleState) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    seed_chunk = run_one("SecurityAccess", ecuAddress="0x01", level=1)
    response = uds(seed_chunk)
    services.SecurityAccess.interpret_response(response, services.SecurityAccess.Mode.RequestSeed)
    seed = response.service_data.seed
    assert seed_chunk.payload["seed"] == f"0x{seed.hex().upper()}"
    assert len(seed) == 4

    key = security_key(seed)
    key_chunk = run_one("SecurityAccess", ecuAddress="0x01", level=1, key=f"0x{key.hex()}")
    response = uds(key_chunk)
    services.SecurityAccess.interpret_response(response, services.SecurityAccess.Mode.SendKey)
    assert response.service_data.security_level_echo == 0x02
    assert key_chunk.payload["unlocked"] is True
    assert vehicle.ecus[0x01].security.unlocked_level == 1

    again = run_one("SecurityAccess", ecuAddress="0x01", level=1)
    assert again.payload["seed"] == "0x00000000"
    assert again.payload["unlocked"] is True


def test_security_access_needs_a_non_default_session(run_one: RunOne) -> None:
    chunk = run_one("SecurityAccess", ecuAddress="0x01")

    assert_negative(chunk, services.SecurityAccess, 0x7F, "serviceNotSupportedInActiveSession")


def test_unsupported_or_even_level_is_sub_function_not_supported(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    for level in (2, 3):
        chunk = run_one("SecurityAccess", ecuAddress="0x01", level=level)
        assert_negative(chunk, services.SecurityAccess, 0x12, "subFunctionNotSupported")


def test_key_without_seed_is_a_sequence_error(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")

    chunk = run_one("SecurityAccess", ecuAddress="0x01", key="0x01020304")

    assert_negative(chunk, services.SecurityAccess, 0x24, "requestSequenceError")


def test_key_of_wrong_length_is_invalid_format(run_one: RunOne) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    run_one("SecurityAccess", ecuAddress="0x01")

    chunk = run_one("SecurityAccess", ecuAddress="0x01", key="0x0102")

    assert_negative(chunk, services.SecurityAccess, 0x13, "incorrectMessageLengthOrInvalidFormat")


def test_three_wrong_keys_lock_out_for_a_while(
    run: Callable[..., list[Any]], run_one: RunOne, vehicle: VehicleState
) -> None:
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    answers = []
    for _ in range(3):
        run_one("SecurityAccess", ecuAddress="0x01")
        answers.append(run_one("SecurityAccess", ecuAddress="0x01", key="0x00000000"))

    assert [a.payload["negativeResponse"]["nrc"] for a in answers] == ["0x35", "0x35", "0x36"]
    locked = run_one("SecurityAccess", ecuAddress="0x01")
    assert_negative(locked, services.SecurityAccess, 0x37, "requiredTimeDelayNotExpired")

    (later,) = run("SecurityAccess", at=vehicle.now + KEY_LOCKOUT, ecuAddress="0x01")
    assert later.error is None


# RoutineControl --------------------------------------------------------------------------


def test_self_test_streams_progress_and_reports_findings(run: Callable[..., list[Any]]) -> None:
    steps = run("RoutineControl", ecuAddress="0x01", routineId="0x0203")

    assert all(isinstance(step, Chunk) for step in steps)
    assert [s.payload["progress"] for s in steps] == [0, 25, 50, 75, 100]
    assert [s.payload["state"] for s in steps] == [
        "started",
        "running",
        "running",
        "running",
        "completed",
    ]
    assert [s.is_final for s in steps] == [False, False, False, False, True]
    assert sum(s.delay_s for s in steps) == pytest.approx(4.0)
    final = steps[-1].payload
    assert final["result"] == "failed"
    assert final["findings"] == ["P0420"]  # P0171 is pending, its test has not failed now

    decoded = []
    for step in steps:
        response = uds(step)
        services.RoutineControl.interpret_response(response)
        decoded.append(response.service_data)
    assert all(data.routine_id_echo == 0x0203 for data in decoded)
    assert [data.routine_status_record[1] for data in decoded] == [0, 25, 50, 75, 100]
    assert [data.control_type_echo for data in decoded] == [0x01, 0x03, 0x03, 0x03, 0x03]
    assert decoded[-1].routine_status_record == bytes((0x00, 100, 0x01))


def test_self_test_passes_once_faults_are_cleared(
    run: Callable[..., list[Any]], run_one: RunOne
) -> None:
    run_one("ClearDTC", ecuAddress="0x01")

    final = run("RoutineControl", ecuAddress="0x01", routineId="0x0203")[-1]

    assert final.payload["result"] == "passed"
    assert final.payload["findings"] == []


def test_programming_dependencies_need_programming_session_and_security(
    run_one: RunOne,
) -> None:
    outside = run_one("RoutineControl", ecuAddress="0x01", routineId="0xFF01")
    assert_negative(outside, services.RoutineControl, 0x31, "requestOutOfRange")

    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    run_one("DiagnosticSessionControl", ecuAddress="0x01", session="programming")
    locked = run_one("RoutineControl", ecuAddress="0x01", routineId="0xFF01")
    assert_negative(locked, services.RoutineControl, 0x33, "securityAccessDenied")

    seed = run_one("SecurityAccess", ecuAddress="0x01", level=0x11).payload["seed"]
    key = security_key(bytes.fromhex(seed[2:]))
    run_one("SecurityAccess", ecuAddress="0x01", level=0x11, key=f"0x{key.hex()}")
    passed = run_one("RoutineControl", ecuAddress="0x01", routineId="0xFF01")
    assert passed.payload["result"] == "passed"


def test_unknown_routine_is_out_of_range(run_one: RunOne) -> None:
    chunk = run_one("RoutineControl", ecuAddress="0x01", routineId="0x1234")

    assert_negative(chunk, services.RoutineControl, 0x31, "requestOutOfRange")


# Parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "errors"),
    [
        ("ReadDTC", {}, [("ecuAddress", "required")]),
        ("ReadDTC", {"ecuAddress": 16}, [("ecuAddress", "expected string, got int")]),
        (
            "ReadDTC",
            {"ecuAddress": "0x100"},
            [("ecuAddress", "does not match ^0x[0-9A-Fa-f]{2}$")],
        ),
        ("ReadDTC", {"ecuAddress": "0x10", "mask": "0xFF"}, [("mask", "unexpected key")]),
        (
            "ClearDTC",
            {"ecuAddress": "0x10", "dtcCode": "p0420"},
            [("dtcCode", "does not match ^[PCBU][0-9A-F]{4}$")],
        ),
        (
            "ReadDataByID",
            {"ecuAddress": "0x10", "dataId": "F190"},
            [("dataId", "does not match ^0x[0-9A-Fa-f]{4}$")],
        ),
        (
            "WriteDataByID",
            {"ecuAddress": "0x10", "dataId": "0xF198", "value": True},
            [("value", "expected string or number, got bool")],
        ),
        (
            "ECUReset",
            {"ecuAddress": "0x10", "resetType": "powerCycle"},
            [("resetType", "must be one of 'hardReset', 'keyOffOnReset', 'softReset'")],
        ),
        (
            "DiagnosticSessionControl",
            {"ecuAddress": "0x10"},
            [("session", "required")],
        ),
        (
            "SecurityAccess",
            {"ecuAddress": "0x10", "level": "1"},
            [("level", "expected int, got string")],
        ),
        (
            "SecurityAccess",
            {"ecuAddress": "0x10", "level": 0x80},
            [("level", "must be between 1 and 125")],
        ),
        (
            "SecurityAccess",
            {"ecuAddress": "0x10", "key": "1234"},
            [("key", "does not match ^0x(?:[0-9A-Fa-f]{2})+$")],
        ),
        (
            "RoutineControl",
            {"ecuAddress": "0x10", "routineId": 515},
            [("routineId", "expected string, got int")],
        ),
    ],
)
def test_bad_params_are_rejected_with_field_errors(
    name: str, raw: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidParams) as caught:
        COMMANDS.parse_params(name, raw)

    assert [(e.field, e.message) for e in caught.value.errors] == errors


def test_every_command_lists_a_schema_that_forbids_extra_keys() -> None:
    described = {entry["name"]: entry for entry in COMMANDS.describe()}

    assert set(described) >= {
        "ReadDTC",
        "ClearDTC",
        "ReadDataByID",
        "WriteDataByID",
        "ECUReset",
        "DiagnosticSessionControl",
        "SecurityAccess",
        "RoutineControl",
    }
    for entry in described.values():
        assert entry["description"]
        assert entry["parameters"]["additionalProperties"] is False
        assert "ecuAddress" in entry["parameters"]["required"]
    assert described["RoutineControl"]["streaming"] is True
    assert described["ReadDTC"]["idempotent"] is True
    assert described["SecurityAccess"]["idempotent"] is False
    assert described["ReadDTC"]["parameters"]["properties"]["statusMask"]["default"] == "0xFF"
