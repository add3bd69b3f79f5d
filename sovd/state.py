"""The full, mutable state of one vehicle, materialized from its seed on first use.

Only the vehicle's actor touches a `VehicleState`; commands change it through the
methods here (`EcuState.clear_dtcs`, `EcuState.enter_session`, ...).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from attrs import define, field

from sovd import dids
from sovd.dids import IDENTIFICATION_DIDS, DidValue
from sovd.errors import UnknownEcu
from sovd.fleet import EcuIdentity, VehicleIdentity, ecu_identity
from sovd.profiles import EcuProfile, SignalProfile
from sovd.uds import ALL_DTC_GROUPS, DtcStatus, Session

MAX_DRIFT_STEP_S = 3600.0
# Faults come back at most a few times an hour; looking once a simulated second is plenty.
RECURRENCE_CHECK_S = 1.0
# A fault that comes back after a clear has failed again but is not yet confirmed.
REAPPEARED_STATUS = int(
    DtcStatus.TEST_FAILED
    | DtcStatus.TEST_FAILED_THIS_OPERATION_CYCLE
    | DtcStatus.PENDING_DTC
    | DtcStatus.TEST_FAILED_SINCE_LAST_CLEAR
)
_KEPT_BY_RESET = 0xFF & ~int(DtcStatus.TEST_FAILED_THIS_OPERATION_CYCLE)
_SET_BY_RESET = int(DtcStatus.TEST_NOT_COMPLETED_THIS_OPERATION_CYCLE)
INITIAL_REPAIR_SHOP_CODE = "0000000000"
DEFAULT_SESSION_TIMEOUT_S = 300.0
# How far back a fault stored at first contact may have first occurred.
MAX_FAULT_AGE_H = 2000.0


@define
class SecurityState:
    unlocked_level: int | None = None
    seed_level: int | None = None
    seed: bytes | None = None
    failed_attempts: int = 0
    locked_until: datetime | None = None

    def lock(self) -> None:
        self.unlocked_level = None
        self.seed_level = None
        self.seed = None


@define
class FaultRecord:
    """What the fault memory keeps beside a DTC's status: when it was first and last seen,
    how often, and the snapshot of live values taken at its last occurrence."""

    first_at: datetime
    last_at: datetime
    occurrences: int
    snapshot: dict[int, DidValue]


@define
class EcuState:
    profile: EcuProfile
    identity: EcuIdentity
    dtcs: dict[int, int] = field(factory=dict)
    session: Session = Session.DEFAULT
    security: SecurityState = field(factory=SecurityState)
    written: dict[int, DidValue] = field(factory=dict)
    history: dict[int, FaultRecord] = field(factory=dict)
    # A non-default session ends this long after the last request to the ECU (the S3 timer).
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S
    last_request_at: datetime | None = None

    @property
    def address(self) -> int:
        return self.profile.address

    @property
    def ecu_address(self) -> str:
        return self.profile.ecu_address

    def stored_dtcs(self, status_mask: int = 0xFF) -> list[tuple[int, int]]:
        """(UDS DTC, status) of stored faults whose status matches the mask, by DTC."""
        return sorted((dtc, st) for dtc, st in self.dtcs.items() if st & status_mask)

    def clear_dtcs(self, group: int = ALL_DTC_GROUPS) -> int:
        """Clears all stored faults, or the one DTC `group`, with their history; returns how
        many went."""
        if group == ALL_DTC_GROUPS:
            cleared = len(self.dtcs)
            self.dtcs.clear()
            self.history.clear()
            return cleared
        self.history.pop(group, None)
        return 1 if self.dtcs.pop(group, None) is not None else 0

    def enter_session(self, session: Session, timeout_s: float | None = None) -> None:
        """A change of session relocks security access; re-entering the same one does not.
        A non-default session lasts `timeout_s` past the last request (the profile's S3
        time when not given)."""
        if session != self.session:
            self.security.lock()
        self.session = session
        self.session_timeout_s = (
            timeout_s if timeout_s is not None else self.profile.session_timeout_s
        )

    def touch(self, now: datetime) -> None:
        """A request reached this ECU: its session timer starts again."""
        self.last_request_at = now

    def session_expired(self, now: datetime) -> bool:
        """Whether the session timer of a non-default session has run out by `now`; the
        session ends at the ECU's next request (`expire_session`)."""
        if self.session == Session.DEFAULT or self.last_request_at is None:
            return False
        return (now - self.last_request_at).total_seconds() >= self.session_timeout_s

    def unlocked_level_at(self, now: datetime) -> int | None:
        """The unlocked security level as the ECU's next request at `now` would find it."""
        return None if self.session_expired(now) else self.security.unlocked_level

    def expire_session(self, now: datetime) -> bool:
        """Back to the default session (locked) once the session timer has run out."""
        if not self.session_expired(now):
            return False
        self.enter_session(Session.DEFAULT)
        return True

    def reset(self) -> None:
        """An ECU reset starts a new operation cycle in the default session, locked."""
        self.session = Session.DEFAULT
        self.security.lock()
        for dtc, status in self.dtcs.items():
            self.dtcs[dtc] = status & _KEPT_BY_RESET | _SET_BY_RESET

    def supports_did(self, did: int) -> bool:
        return did in IDENTIFICATION_DIDS or did in self.profile.signal_dids

    def stored_value(self, did: int) -> DidValue | None:
        """The value of an identification or written DID; None for live ones."""
        if did in self.written:
            return self.written[did]
        ident = self.identity
        match did:
            case dids.ACTIVE_SESSION:
                return self.session.label
            case dids.SPARE_PART_NUMBER:
                return ident.part_number
            case dids.SUPPLIER:
                return ident.supplier
            case dids.MANUFACTURING_DATE | dids.PROGRAMMING_DATE:
                return ident.manufacturing_date.isoformat()
            case dids.SERIAL_NUMBER:
                return ident.serial_number
            case dids.HARDWARE_NUMBER:
                return ident.hardware_number
            case dids.SOFTWARE_VERSION:
                return ident.software_version
            case dids.SYSTEM_NAME:
                return self.profile.system_name
            case dids.REPAIR_SHOP_CODE:
                return INITIAL_REPAIR_SHOP_CODE
        return None


@define
class Signal:
    profile: SignalProfile
    value: float
    updated_at: datetime

    def drift_to(self, now: datetime, rng: random.Random) -> float:
        elapsed = min((now - self.updated_at).total_seconds(), MAX_DRIFT_STEP_S)
        if elapsed > 0:
            p = self.profile
            value = self.value + p.rate_per_hour * elapsed / 3600
            if p.volatility:
                pull = math.exp(-elapsed / p.settle_s)
                spread = p.volatility * math.sqrt(p.settle_s * (1 - pull * pull) / 2)
                value = p.typical + (value - p.typical) * pull + rng.gauss(0.0, spread)
            self.value = min(max(value, p.minimum), p.maximum)
            self.updated_at = now
        return self.value


@define
class VehicleState:
    identity: VehicleIdentity
    ecus: dict[int, EcuState]
    signals: dict[int, Signal]
    rng: random.Random
    now: datetime
    faults_checked_at: datetime

    def ecu(self, address: int) -> EcuState:
        ecu = self.ecus.get(address)
        if ecu is None:
            raise UnknownEcu(address, tuple(self.ecus))
        return ecu

    def advance_to(self, now: datetime) -> None:
        """Moves simulated time to `now`: idle sessions end, cleared faults may come back."""
        if now > self.now:
            self.now = now
        for ecu in self.ecus.values():
            ecu.expire_session(self.now)
        recurring = self.identity.profile.recurring_faults
        if not recurring:
            return
        elapsed = (self.now - self.faults_checked_at).total_seconds()
        if elapsed < RECURRENCE_CHECK_S:
            return
        self.faults_checked_at = self.now
        hours = min(elapsed, MAX_DRIFT_STEP_S) / 3600
        for entry in recurring:
            ecu = self.ecus[entry.ecu_address]
            if entry.uds_dtc in ecu.dtcs:
                continue
            if self.rng.random() < 1 - math.exp(-entry.reappear_per_hour * hours):
                self.record_fault(ecu, entry.uds_dtc, REAPPEARED_STATUS)

    def record_fault(self, ecu: EcuState, uds_dtc: int, status: int) -> None:
        """`ecu` detects `uds_dtc` now: it is stored with `status`, and its fault record
        starts (with a snapshot of the live values) or counts one more occurrence."""
        snapshot = self.snapshot_of(ecu)
        record = ecu.history.get(uds_dtc)
        if record is None:
            ecu.history[uds_dtc] = FaultRecord(self.now, self.now, 1, snapshot)
        else:
            record.last_at = self.now
            record.occurrences += 1
            record.snapshot = snapshot
        ecu.dtcs[uds_dtc] = status

    def snapshot_of(self, ecu: EcuState) -> dict[int, DidValue]:
        """The live values a fault's snapshot record holds, read now."""
        return {
            did: self.signals[did].drift_to(self.now, self.rng)
            for did in ecu.profile.signal_dids
            if did in self.signals
        }

    def did_value(self, ecu: EcuState, did: int) -> DidValue | None:
        """The current physical value of `did` on `ecu`; None if the ECU lacks it."""
        if not ecu.supports_did(did):
            return None
        if did == dids.VIN and did not in ecu.written:
            return self.identity.vin
        signal = self.signals.get(did)
        if signal is not None:
            return signal.drift_to(self.now, self.rng)
        return ecu.stored_value(did)

    def end_sessions(self) -> None:
        """What the S3 timer does when the tester goes quiet: default session, locked."""
        for ecu in self.ecus.values():
            ecu.enter_session(Session.DEFAULT)

    def sessions(self) -> dict[str, str]:
        return {ecu.ecu_address: ecu.session.label for ecu in self.ecus.values()}


def materialize_state(identity: VehicleIdentity, now: datetime) -> VehicleState:
    """The vehicle as it is when first contacted: same identity, same state."""
    rng = random.Random(identity.vehicle_id.int)
    profile = identity.profile
    ecus = {ecu.address: EcuState(ecu, ecu_identity(identity, ecu)) for ecu in profile.ecus}
    for entry in profile.dtc_pool:
        if rng.random() < entry.probability:
            ecus[entry.ecu_address].dtcs[entry.uds_dtc] = entry.status
    signals = {
        signal.did: Signal(signal, rng.uniform(signal.initial_min, signal.initial_max), now)
        for signal in profile.signals
    }
    for ecu in ecus.values():
        for dtc in ecu.dtcs:
            ecu.history[dtc] = _past_occurrences(identity, ecu, dtc, signals, now)
    return VehicleState(identity, ecus, signals, rng, now, now)


def _past_occurrences(
    identity: VehicleIdentity, ecu: EcuState, dtc: int, signals: dict[int, Signal], now: datetime
) -> FaultRecord:
    """The history of a fault the vehicle already holds when first contacted, drawn from a
    generator of its own so the vehicle's other values stay as they were."""
    rng = random.Random(identity.vehicle_id.int ^ (ecu.address << 24 | dtc))
    first = now - timedelta(hours=rng.uniform(1.0, MAX_FAULT_AGE_H))
    last = first + (now - first) * rng.random()
    snapshot: dict[int, DidValue] = {}
    for did in ecu.profile.signal_dids:
        signal = signals.get(did)
        if signal is not None:
            p = signal.profile
            info = dids.DID_CATALOG[did]
            snapshot[did] = info.codec.decode(info.codec.encode(rng.uniform(p.minimum, p.maximum)))
    return FaultRecord(first, last, rng.randint(1, 40), snapshot)
