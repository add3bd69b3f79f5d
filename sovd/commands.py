"""The built-in commands. Each is one parameter class and one registered handler.

Handlers are generators over the vehicle's state: they check the UDS preconditions (raising
`NegativeResponse` as a real ECU would answer), change the state, and yield `Reply` chunks
with the readable form and the exact UDS response bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Literal

from attrs import frozen

from sovd.dids import DID_CATALOG, DataLengthError
from sovd.dtcs import describe_dtc
from sovd.params import (
    ByteMask,
    DataId,
    Doc,
    DtcCode,
    EcuAddress,
    HexData,
    Range,
    RoutineId,
    Scalar,
)
from sovd.registry import CommandRegistry, Reply
from sovd.state import EcuState, VehicleState
from sovd.uds import (
    ALL_DTC_GROUPS,
    READ_DTC_BY_STATUS_MASK,
    RESET_TYPES_BY_LABEL,
    ROUTINE_REQUEST_RESULTS,
    ROUTINE_START,
    ROUTINE_STOP,
    DtcStatus,
    NegativeResponse,
    Nrc,
    Service,
    Session,
    decode_dtc,
    dtc_status_bits,
    encode_dtc,
    hex_bytes,
    positive_response,
)

COMMANDS = CommandRegistry()

STATUS_AVAILABILITY_MASK = 0xFF
SECURITY_KEY_MASK = 0x5A3C96E1
MAX_KEY_ATTEMPTS = 3
KEY_LOCKOUT = timedelta(seconds=10)
SELF_TEST = 0x0203
CHECK_PROGRAMMING_DEPENDENCIES = 0xFF01
SELF_TEST_STEP_S = 1.0
REPORT_SNAPSHOT_BY_DTC = 0x04
REPORT_EXTENDED_DATA_BY_DTC = 0x06
SNAPSHOT_RECORD = 0x01
# Extended data records, four bytes each (a client needs one record size per DTC): counters
# (occurrence, aging; two bytes each), the first and the last occurrence (Unix time).
EXT_RECORD_COUNTERS = 0x01
EXT_RECORD_FIRST_OCCURRENCE = 0x02
EXT_RECORD_LAST_OCCURRENCE = 0x03
ROUTINE_RUNNING = 0x01
ROUTINE_COMPLETED = 0x00


def _ecu(vehicle: VehicleState, ecu_address: str) -> EcuState:
    return vehicle.ecu(int(ecu_address, 16))


def _require_non_default_session(ecu: EcuState, service: Service) -> None:
    if ecu.session == Session.DEFAULT:
        raise NegativeResponse(service, Nrc.SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION)


def security_key(seed: bytes) -> bytes:
    """The key SecurityAccess expects for `seed`: (seed XOR 0x5A3C96E1) rotated left by
    3 bits, as a 32-bit big-endian number. Published so clients can unlock."""
    value = int.from_bytes(seed, "big") ^ SECURITY_KEY_MASK
    return (((value << 3) | (value >> 29)) & 0xFFFFFFFF).to_bytes(4, "big")


# ReadDTC ---------------------------------------------------------------------------------


@frozen
class ReadDtcParams:
    ecu_address: EcuAddress
    status_mask: Annotated[
        ByteMask, Doc("Only DTCs whose status byte shares a bit with this mask")
    ] = "0xFF"


@COMMANDS.command(
    "ReadDTC",
    params=ReadDtcParams,
    service=Service.READ_DTC_INFORMATION,
    description="Read the DTCs one ECU has stored (UDS 0x19 0x02 reportDTCByStatusMask).",
    idempotent=True,
)
def read_dtc(vehicle: VehicleState, params: ReadDtcParams) -> Iterator[Reply]:
    ecu = _ecu(vehicle, params.ecu_address)
    mask = int(params.status_mask, 16)
    stored = ecu.stored_dtcs(mask)
    records = b"".join(dtc.to_bytes(3, "big") + bytes((status,)) for dtc, status in stored)
    dtcs = []
    for dtc, status in stored:
        code = decode_dtc(dtc)
        dtcs.append(
            {
                "dtcCode": code,
                "description": describe_dtc(code),
                "udsDtc": f"0x{dtc:06X}",
                "status": dtc_status_bits(status),
                "statusByte": f"0x{status:02X}",
            }
        )
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "ecuName": ecu.profile.name,
            "statusMask": f"0x{mask:02X}",
            "statusAvailabilityMask": f"0x{STATUS_AVAILABILITY_MASK:02X}",
            "dtcCount": len(dtcs),
            "dtcs": dtcs,
        },
        positive_response(
            Service.READ_DTC_INFORMATION,
            READ_DTC_BY_STATUS_MASK,
            STATUS_AVAILABILITY_MASK,
            records,
        ),
    )


# ClearDTC --------------------------------------------------------------------------------


@frozen
class ClearDtcParams:
    ecu_address: EcuAddress
    dtc_code: Annotated[DtcCode, Doc("Clear only this DTC; omit to clear all")] | None = None


@COMMANDS.command(
    "ClearDTC",
    params=ClearDtcParams,
    service=Service.CLEAR_DIAGNOSTIC_INFORMATION,
    description="Clear all stored DTCs of one ECU, or one DTC (UDS 0x14).",
    idempotent=True,
    changes_state=True,
)
def clear_dtc(vehicle: VehicleState, params: ClearDtcParams) -> Iterator[Reply]:
    ecu = _ecu(vehicle, params.ecu_address)
    group = ALL_DTC_GROUPS
    if params.dtc_code is not None:
        try:
            group = encode_dtc(params.dtc_code)
        except ValueError:
            raise NegativeResponse(
                Service.CLEAR_DIAGNOSTIC_INFORMATION, Nrc.REQUEST_OUT_OF_RANGE
            ) from None
    cleared = ecu.clear_dtcs(group)
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "cleared": params.dtc_code or "all",
            "clearedCount": cleared,
            "remainingCount": len(ecu.dtcs),
        },
        positive_response(Service.CLEAR_DIAGNOSTIC_INFORMATION),
    )


# ReadDTCDetails --------------------------------------------------------------------------


@frozen
class ReadDtcDetailsParams:
    ecu_address: EcuAddress
    dtc_code: DtcCode


@COMMANDS.command(
    "ReadDTCDetails",
    params=ReadDtcDetailsParams,
    service=Service.READ_DTC_INFORMATION,
    description=(
        "Read one stored DTC's snapshot record (UDS 0x19 0x04: the live values at its last "
        "occurrence) and its extended data (0x19 0x06: occurrence and aging counters, first "
        "and last occurrence as Unix time)."
    ),
    idempotent=True,
)
def read_dtc_details(vehicle: VehicleState, params: ReadDtcDetailsParams) -> Iterator[Reply]:
    service = Service.READ_DTC_INFORMATION
    ecu = _ecu(vehicle, params.ecu_address)
    try:
        dtc = encode_dtc(params.dtc_code)
    except ValueError:
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE) from None
    status = ecu.dtcs.get(dtc)
    record = ecu.history.get(dtc)
    if status is None or record is None:
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE)
    identifiers = []
    snapshot_bytes = b""
    for did, value in record.snapshot.items():
        info = DID_CATALOG[did]
        raw = info.codec.encode(value)
        snapshot_bytes += did.to_bytes(2, "big") + raw
        identifiers.append(
            {
                "dataId": info.data_id,
                "description": info.description,
                "value": value,
                "unit": info.unit,
            }
        )
    head = dtc.to_bytes(3, "big") + bytes((status,))
    described = {
        "ecuAddress": ecu.ecu_address,
        "dtcCode": params.dtc_code,
        "udsDtc": f"0x{dtc:06X}",
        "statusByte": f"0x{status:02X}",
        "status": dtc_status_bits(status),
    }
    yield Reply(
        described
        | {
            "snapshot": {
                "recordNumber": SNAPSHOT_RECORD,
                "identifiers": identifiers,
            }
        },
        positive_response(
            service,
            REPORT_SNAPSHOT_BY_DTC,
            head,
            SNAPSHOT_RECORD,
            len(identifiers),
            snapshot_bytes,
        ),
    )
    counters = min(record.occurrences, 0xFFFF).to_bytes(2, "big") + bytes(2)
    yield Reply(
        described
        | {
            "extendedData": {
                "occurrenceCounter": record.occurrences,
                "agingCounter": 0,
                "firstOccurrence": record.first_at.isoformat(),
                "lastOccurrence": record.last_at.isoformat(),
            }
        },
        positive_response(
            service,
            REPORT_EXTENDED_DATA_BY_DTC,
            head,
            EXT_RECORD_COUNTERS,
            counters,
            EXT_RECORD_FIRST_OCCURRENCE,
            _unix_time(record.first_at),
            EXT_RECORD_LAST_OCCURRENCE,
            _unix_time(record.last_at),
        ),
    )


def _unix_time(moment: datetime) -> bytes:
    return int(moment.timestamp()).to_bytes(4, "big")


# ReadDataByID ----------------------------------------------------------------------------


@frozen
class ReadDataParams:
    ecu_address: EcuAddress
    data_id: DataId


@COMMANDS.command(
    "ReadDataByID",
    params=ReadDataParams,
    service=Service.READ_DATA_BY_IDENTIFIER,
    description="Read one data identifier, e.g. 0xF190 VIN or 0xF40C engine speed (UDS 0x22).",
    idempotent=True,
)
def read_data_by_id(vehicle: VehicleState, params: ReadDataParams) -> Iterator[Reply]:
    ecu = _ecu(vehicle, params.ecu_address)
    did = int(params.data_id, 16)
    info = DID_CATALOG.get(did)
    value = vehicle.did_value(ecu, did) if info else None
    if info is None or value is None:
        raise NegativeResponse(Service.READ_DATA_BY_IDENTIFIER, Nrc.REQUEST_OUT_OF_RANGE)
    raw = info.codec.encode(value)
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "dataId": info.data_id,
            "description": info.description,
            "value": info.codec.decode(raw),
            "unit": info.unit,
            "raw": hex_bytes(raw),
        },
        positive_response(Service.READ_DATA_BY_IDENTIFIER, did.to_bytes(2, "big"), raw),
    )


# WriteDataByID ---------------------------------------------------------------------------


@frozen
class WriteDataParams:
    ecu_address: EcuAddress
    data_id: DataId
    value: Annotated[Scalar, Doc("Readable value, as ReadDataByID returns it")]


@COMMANDS.command(
    "WriteDataByID",
    params=WriteDataParams,
    service=Service.WRITE_DATA_BY_IDENTIFIER,
    description=(
        "Write one data identifier (UDS 0x2E). Needs the extended or programming session; "
        "0xF190 VIN also needs security level 0x01 unlocked."
    ),
    idempotent=True,
    changes_state=True,
)
def write_data_by_id(vehicle: VehicleState, params: WriteDataParams) -> Iterator[Reply]:
    service = Service.WRITE_DATA_BY_IDENTIFIER
    ecu = _ecu(vehicle, params.ecu_address)
    _require_non_default_session(ecu, service)
    did = int(params.data_id, 16)
    info = DID_CATALOG.get(did)
    if info is None or info.write is None or not ecu.supports_did(did):
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE)
    if ecu.session not in info.write.sessions:
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE)
    level = info.write.security_level
    if level is not None and ecu.security.unlocked_level != level:
        raise NegativeResponse(service, Nrc.SECURITY_ACCESS_DENIED)
    try:
        raw = info.codec.encode(params.value)
    except DataLengthError:
        raise NegativeResponse(service, Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT) from None
    except (TypeError, ValueError, KeyError):
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE) from None
    value = info.codec.decode(raw)
    ecu.written[did] = value
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "dataId": info.data_id,
            "description": info.description,
            "value": value,
            "unit": info.unit,
            "raw": hex_bytes(raw),
        },
        positive_response(service, did.to_bytes(2, "big")),
    )


# ECUReset --------------------------------------------------------------------------------


@frozen
class EcuResetParams:
    ecu_address: EcuAddress
    reset_type: Literal["hardReset", "keyOffOnReset", "softReset"] = "hardReset"


@COMMANDS.command(
    "ECUReset",
    params=EcuResetParams,
    service=Service.ECU_RESET,
    description=(
        "Reset one ECU (UDS 0x11): it restarts in the default session with security locked "
        "and a new operation cycle."
    ),
    changes_state=True,
)
def ecu_reset(vehicle: VehicleState, params: EcuResetParams) -> Iterator[Reply]:
    ecu = _ecu(vehicle, params.ecu_address)
    reset_type = RESET_TYPES_BY_LABEL[params.reset_type]
    ecu.reset()
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "resetType": params.reset_type,
            "resetTypeId": f"0x{reset_type:02X}",
        },
        positive_response(Service.ECU_RESET, reset_type),
    )


# DiagnosticSessionControl ----------------------------------------------------------------


@frozen
class SessionControlParams:
    ecu_address: EcuAddress
    session: Literal["default", "programming", "extended", "safetySystem"]
    session_timeout_s: (
        Annotated[
            int,
            Range(1, 86_400),
            Doc(
                "Seconds the session lasts past the last request; the profile's S3 time if omitted"
            ),
        ]
        | None
    ) = None


@COMMANDS.command(
    "DiagnosticSessionControl",
    params=SessionControlParams,
    service=Service.DIAGNOSTIC_SESSION_CONTROL,
    description=(
        "Switch one ECU's diagnostic session (UDS 0x10). Programming is reachable only from "
        "the extended session; changing session relocks security access."
    ),
    idempotent=True,
    changes_state=True,
)
def diagnostic_session_control(
    vehicle: VehicleState, params: SessionControlParams
) -> Iterator[Reply]:
    service = Service.DIAGNOSTIC_SESSION_CONTROL
    ecu = _ecu(vehicle, params.ecu_address)
    target = Session.from_label(params.session)
    if target == Session.SAFETY_SYSTEM:
        raise NegativeResponse(service, Nrc.SUB_FUNCTION_NOT_SUPPORTED)
    if target == Session.PROGRAMMING and ecu.session == Session.DEFAULT:
        raise NegativeResponse(service, Nrc.SUB_FUNCTION_NOT_SUPPORTED_IN_ACTIVE_SESSION)
    ecu.enter_session(target, params.session_timeout_s)
    p2_ms = ecu.profile.p2_server_max_ms
    p2_star_10ms = ecu.profile.p2_star_server_max_ms // 10
    yield Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "session": target.label,
            "sessionType": f"0x{target:02X}",
            "p2ServerMaxMs": p2_ms,
            "p2StarServerMaxMs": p2_star_10ms * 10,
            "sessionTimeoutS": ecu.session_timeout_s,
        },
        positive_response(
            service, target, p2_ms.to_bytes(2, "big"), p2_star_10ms.to_bytes(2, "big")
        ),
    )


# SecurityAccess --------------------------------------------------------------------------


@frozen
class SecurityAccessParams:
    ecu_address: EcuAddress
    level: Annotated[
        int, Range(0x01, 0x7D), Doc("requestSeed sub-function: an odd level, e.g. 1")
    ] = 0x01
    key: (
        Annotated[
            HexData, Doc("Key for the seed received before, e.g. 0x1A2B3C4D; omit to get a seed")
        ]
        | None
    ) = None


@COMMANDS.command(
    "SecurityAccess",
    params=SecurityAccessParams,
    service=Service.SECURITY_ACCESS,
    description=(
        "Seed/key unlock of one ECU (UDS 0x27), in a non-default session. Without `key` the "
        "ECU returns a 4-byte seed; send key = (seed XOR 0x5A3C96E1) rotated left by 3 bits. "
        "Three wrong keys lock the level for 10 s."
    ),
    changes_state=True,
)
def security_access(vehicle: VehicleState, params: SecurityAccessParams) -> Iterator[Reply]:
    service = Service.SECURITY_ACCESS
    ecu = _ecu(vehicle, params.ecu_address)
    _require_non_default_session(ecu, service)
    level = params.level
    if level % 2 == 0 or level not in ecu.profile.security_levels:
        raise NegativeResponse(service, Nrc.SUB_FUNCTION_NOT_SUPPORTED)
    if params.key is None:
        yield _request_seed(vehicle, ecu, level)
    else:
        yield _send_key(ecu, level, bytes.fromhex(params.key[2:]), vehicle)


def _request_seed(vehicle: VehicleState, ecu: EcuState, level: int) -> Reply:
    security = ecu.security
    if security.locked_until is not None and vehicle.now < security.locked_until:
        raise NegativeResponse(Service.SECURITY_ACCESS, Nrc.REQUIRED_TIME_DELAY_NOT_EXPIRED)
    unlocked = security.unlocked_level == level
    if unlocked:
        seed = bytes(4)  # ISO 14229: an already unlocked level answers with a zero seed
    else:
        seed = (vehicle.rng.getrandbits(32) | 1).to_bytes(4, "big")
        security.seed, security.seed_level = seed, level
    return Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "securityLevel": level,
            "step": "requestSeed",
            "seed": f"0x{hex_bytes(seed)}",
            "unlocked": unlocked,
        },
        positive_response(Service.SECURITY_ACCESS, level, seed),
    )


def _send_key(ecu: EcuState, level: int, key: bytes, vehicle: VehicleState) -> Reply:
    service = Service.SECURITY_ACCESS
    security = ecu.security
    if security.seed is None or security.seed_level != level:
        raise NegativeResponse(service, Nrc.REQUEST_SEQUENCE_ERROR)
    if len(key) != len(security.seed):
        raise NegativeResponse(service, Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT)
    expected = security_key(security.seed)
    security.seed, security.seed_level = None, None
    if key != expected:
        security.failed_attempts += 1
        if security.failed_attempts >= MAX_KEY_ATTEMPTS:
            security.failed_attempts = 0
            security.locked_until = vehicle.now + KEY_LOCKOUT
            raise NegativeResponse(service, Nrc.EXCEEDED_NUMBER_OF_ATTEMPTS)
        raise NegativeResponse(service, Nrc.INVALID_KEY)
    security.failed_attempts = 0
    security.unlocked_level = level
    return Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "securityLevel": level,
            "step": "sendKey",
            "unlocked": True,
        },
        positive_response(service, level + 1),
    )


# RoutineControl --------------------------------------------------------------------------


@frozen
class RoutineControlParams:
    ecu_address: EcuAddress
    routine_id: Annotated[
        RoutineId,
        Doc("0x0203 ECU self-test (streams progress), 0xFF01 checkProgrammingDependencies"),
    ]


def stop_routine(vehicle: VehicleState, params: RoutineControlParams) -> Reply:
    """stopRoutine (0x31 0x02): only the self-test runs long enough to be stopped."""
    ecu = _ecu(vehicle, params.ecu_address)
    routine_id = int(params.routine_id, 16)
    if routine_id != SELF_TEST:
        raise NegativeResponse(Service.ROUTINE_CONTROL, Nrc.REQUEST_SEQUENCE_ERROR)
    return Reply(
        {
            "ecuAddress": ecu.ecu_address,
            "routineId": f"0x{routine_id:04X}",
            "routine": "selfTest",
            "state": "stopped",
        },
        positive_response(
            Service.ROUTINE_CONTROL, ROUTINE_STOP, routine_id.to_bytes(2, "big"), ROUTINE_COMPLETED
        ),
    )


@COMMANDS.command(
    "RoutineControl",
    params=RoutineControlParams,
    service=Service.ROUTINE_CONTROL,
    description=(
        "Start a routine on one ECU (UDS 0x31). 0x0203 runs a self-test that streams its "
        "progress for about four seconds and reports the faults it finds; 0xFF01 "
        "checkProgrammingDependencies needs the programming session and security access. "
        "A running self-test can be stopped (0x31 0x02)."
    ),
    streaming=True,
    stop=stop_routine,
)
def routine_control(vehicle: VehicleState, params: RoutineControlParams) -> Iterator[Reply]:
    service = Service.ROUTINE_CONTROL
    ecu = _ecu(vehicle, params.ecu_address)
    routine_id = int(params.routine_id, 16)
    if routine_id == SELF_TEST:
        yield from _self_test(ecu)
    elif routine_id == CHECK_PROGRAMMING_DEPENDENCIES:
        if ecu.session != Session.PROGRAMMING:
            raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE)
        if ecu.security.unlocked_level is None:
            raise NegativeResponse(service, Nrc.SECURITY_ACCESS_DENIED)
        yield _routine_reply(
            ecu,
            routine_id,
            "checkProgrammingDependencies",
            ROUTINE_START,
            ROUTINE_COMPLETED,
            progress=100,
            result="passed",
        )
    else:
        raise NegativeResponse(service, Nrc.REQUEST_OUT_OF_RANGE)


def _self_test(ecu: EcuState) -> Iterator[Reply]:
    name = "selfTest"
    yield _routine_reply(ecu, SELF_TEST, name, ROUTINE_START, ROUTINE_RUNNING, progress=0)
    for progress in (25, 50, 75):
        yield _routine_reply(
            ecu,
            SELF_TEST,
            name,
            ROUTINE_REQUEST_RESULTS,
            ROUTINE_RUNNING,
            progress=progress,
            after_s=SELF_TEST_STEP_S,
        )
    findings = [decode_dtc(dtc) for dtc, _ in ecu.stored_dtcs(DtcStatus.TEST_FAILED)]
    yield _routine_reply(
        ecu,
        SELF_TEST,
        name,
        ROUTINE_REQUEST_RESULTS,
        ROUTINE_COMPLETED,
        progress=100,
        result="failed" if findings else "passed",
        findings=findings,
        after_s=SELF_TEST_STEP_S,
    )


def _routine_reply(
    ecu: EcuState,
    routine_id: int,
    name: str,
    control: int,
    routine_info: int,
    *,
    progress: int,
    result: str | None = None,
    findings: list[str] | None = None,
    after_s: float = 0.0,
) -> Reply:
    """Status record: routineInfo (0x01 running, 0x00 completed), progress %, and once
    completed a result byte (0x00 passed, 0x01 failed)."""
    record = bytes((routine_info, progress))
    payload: dict[str, object] = {
        "ecuAddress": ecu.ecu_address,
        "routineId": f"0x{routine_id:04X}",
        "routine": name,
        "state": "running" if routine_info == ROUTINE_RUNNING else "completed",
        "progress": progress,
    }
    if control == ROUTINE_START and routine_info == ROUTINE_RUNNING:
        payload["state"] = "started"
    if result is not None:
        record += bytes((0x00 if result == "passed" else 0x01,))
        payload["result"] = result
    if findings is not None:
        payload["findings"] = findings
    return Reply(
        payload,
        positive_response(Service.ROUTINE_CONTROL, control, routine_id.to_bytes(2, "big"), record),
        after_s=after_s,
    )
