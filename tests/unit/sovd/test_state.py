from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from sovd.demo import FORD_F150
from sovd.fleet import FleetSpec, build_fleet, build_identity
from sovd.profiles import DtcPoolEntry, VehicleProfile
from sovd.state import REAPPEARED_STATUS, VehicleState, materialize_state
from sovd.uds import Session, encode_dtc


def snapshot(state: VehicleState) -> object:
    return (
        {a: (dict(e.dtcs), e.identity) for a, e in state.ecus.items()},
        {did: signal.value for did, signal in state.signals.items()},
        state.rng.random(),
    )


def test_same_seed_same_state(fleet: FleetSpec, now: datetime) -> None:
    first = materialize_state(build_identity(fleet, 3), now)
    again = materialize_state(build_identity(attrs.evolve(fleet), 3), now)

    assert snapshot(first) == snapshot(again)


def test_initial_faults_follow_the_pool_probabilities(now: datetime) -> None:
    vehicles = build_fleet(FleetSpec("many", FORD_F150, 2000, seed=5))

    with_c1418 = sum(
        encode_dtc("C1418") in materialize_state(v, now).ecus[0x30].dtcs for v in vehicles
    )

    assert 60 < with_c1418 < 190  # 6 % of 2000 = 120


def test_live_values_start_inside_their_initial_range(vehicle: VehicleState) -> None:
    for did, signal in vehicle.signals.items():
        assert signal.profile.initial_min <= signal.value <= signal.profile.initial_max, did


def test_cleared_faults_come_back_as_the_profile_says(
    profile: VehicleProfile, now: datetime
) -> None:
    recurring = attrs.evolve(
        profile, dtc_pool=(DtcPoolEntry(0x01, "P0300", 1.0, 0xAF, reappear_per_hour=50.0),)
    )
    state = materialize_state(build_identity(FleetSpec("r", recurring, 1), 0), now)
    ecu = state.ecus[0x01]
    assert ecu.clear_dtcs() == 1

    state.advance_to(now + timedelta(milliseconds=500))
    assert not ecu.dtcs, "nothing happens within a second"
    state.advance_to(now + timedelta(hours=1))

    assert ecu.dtcs == {encode_dtc("P0300"): REAPPEARED_STATUS}


def test_time_never_runs_backwards(vehicle: VehicleState, now: datetime) -> None:
    vehicle.advance_to(now + timedelta(seconds=10))
    vehicle.advance_to(now)

    assert vehicle.now == now + timedelta(seconds=10)


def test_end_sessions_is_the_s3_timeout(vehicle: VehicleState) -> None:
    ecu = vehicle.ecus[0x01]
    ecu.enter_session(Session.EXTENDED)
    ecu.security.unlocked_level = 1

    vehicle.end_sessions()

    assert ecu.session == Session.DEFAULT
    assert ecu.security.unlocked_level is None
    assert set(vehicle.sessions().values()) == {"default"}


def test_an_expired_session_shows_locked_before_the_next_request(
    vehicle: VehicleState, now: datetime
) -> None:
    ecu = vehicle.ecus[0x01]
    ecu.enter_session(Session.EXTENDED, timeout_s=5)
    ecu.security.unlocked_level = 1
    ecu.touch(now)

    assert not ecu.session_expired(now + timedelta(seconds=4.9))
    assert ecu.unlocked_level_at(now + timedelta(seconds=4.9)) == 1
    assert ecu.session_expired(now + timedelta(seconds=5))
    assert ecu.unlocked_level_at(now + timedelta(seconds=5)) is None
    assert ecu.session == Session.EXTENDED, "looking changes nothing"

    assert ecu.expire_session(now + timedelta(seconds=5))
    assert (ecu.session, ecu.security.unlocked_level) == (Session.DEFAULT, None)
    assert not ecu.session_expired(now + timedelta(hours=1)), "the default session never ends"


def test_a_recorded_fault_is_stored_and_its_occurrences_counted(
    vehicle: VehicleState, now: datetime
) -> None:
    ecu = vehicle.ecus[0x02]
    misfire = encode_dtc("P0301")
    vehicle.record_fault(ecu, misfire, 0x09)
    first = ecu.history[misfire]

    vehicle.advance_to(now + timedelta(minutes=5))
    vehicle.record_fault(ecu, misfire, 0x2F)

    assert ecu.dtcs[misfire] == 0x2F
    record = ecu.history[misfire]
    assert (record.first_at, record.last_at) == (now, now + timedelta(minutes=5))
    assert record.occurrences == 2
    assert first is record
    assert set(record.snapshot) == set(ecu.profile.signal_dids) & set(vehicle.signals)
