"""What of a vehicle's state outlives its actor: stored faults with their history, written
data identifiers, sessions and security, as a JSON document.

Commands change these; the live signals and the random generator are not kept (they are
drawn again from the vehicle's seed), nor is a seed sent but not yet answered with a key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sovd.dids import DidValue
from sovd.fleet import VehicleIdentity
from sovd.state import EcuState, FaultRecord, VehicleState, materialize_state
from sovd.uds import Session

FORMAT = 1
Snapshot = dict[str, Any]


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def snapshot_of(state: VehicleState) -> Snapshot:
    return {
        "format": FORMAT,
        "faults_checked_at": _stamp(state.faults_checked_at),
        "ecus": {f"{address:02X}": _ecu_snapshot(ecu) for address, ecu in state.ecus.items()},
    }


def _ecu_snapshot(ecu: EcuState) -> dict[str, Any]:
    security = ecu.security
    return {
        "dtcs": {f"{dtc:06X}": status for dtc, status in ecu.dtcs.items()},
        "history": {
            f"{dtc:06X}": {
                "first_at": _stamp(record.first_at),
                "last_at": _stamp(record.last_at),
                "occurrences": record.occurrences,
                "snapshot": {f"{did:04X}": value for did, value in record.snapshot.items()},
            }
            for dtc, record in ecu.history.items()
        },
        "written": {f"{did:04X}": value for did, value in ecu.written.items()},
        "session": ecu.session.label,
        "session_timeout_s": ecu.session_timeout_s,
        "last_request_at": _stamp(ecu.last_request_at),
        "security": {
            "unlocked_level": security.unlocked_level,
            "failed_attempts": security.failed_attempts,
            "locked_until": _stamp(security.locked_until),
        },
    }


def restore_state(identity: VehicleIdentity, snapshot: Snapshot, now: datetime) -> VehicleState:
    """The vehicle as its snapshot left it; ECUs the profile no longer has are ignored, and a
    snapshot of another format is not applied (the vehicle starts from its seed)."""
    state = materialize_state(identity, now)
    if snapshot.get("format") != FORMAT:
        return state
    checked = _moment(snapshot.get("faults_checked_at"))
    if checked is not None:
        state.faults_checked_at = checked
    for address, saved in snapshot.get("ecus", {}).items():
        ecu = state.ecus.get(int(address, 16))
        if ecu is not None:
            _restore_ecu(ecu, saved)
    return state


def _restore_ecu(ecu: EcuState, saved: dict[str, Any]) -> None:
    ecu.dtcs = {int(dtc, 16): int(status) for dtc, status in saved["dtcs"].items()}
    ecu.history = {
        int(dtc, 16): FaultRecord(
            _moment(record["first_at"]) or datetime.min,
            _moment(record["last_at"]) or datetime.min,
            int(record["occurrences"]),
            {int(did, 16): value for did, value in record["snapshot"].items()},
        )
        for dtc, record in saved["history"].items()
    }
    written: dict[int, DidValue] = {int(did, 16): value for did, value in saved["written"].items()}
    ecu.written = written
    ecu.session = Session.from_label(saved["session"])
    ecu.session_timeout_s = float(saved["session_timeout_s"])
    ecu.last_request_at = _moment(saved["last_request_at"])
    security = saved["security"]
    ecu.security.unlocked_level = security["unlocked_level"]
    ecu.security.failed_attempts = int(security["failed_attempts"])
    ecu.security.locked_until = _moment(security["locked_until"])
