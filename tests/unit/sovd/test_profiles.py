from __future__ import annotations

import attrs
import pytest

from sovd import dids
from sovd.demo import DEMO_PROFILES, VW_GOLF
from sovd.errors import InvalidProfile
from sovd.profiles import DtcPoolEntry, EcuProfile, FailureModes, SignalProfile


def test_failure_modes_are_off_by_default() -> None:
    assert FailureModes().total == 0
    assert all(profile.failure_modes.total == 0 for profile in DEMO_PROFILES)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 1.5}, "probability"),
        ({"timeout": 0.6, "negative_response": 0.6}, "add up"),
        ({"pending_delay_s": -1}, "negative"),
    ],
)
def test_bad_failure_modes(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidProfile, match=message):
        FailureModes(**kwargs)


def test_dtc_pool_entries_must_be_encodable_codes() -> None:
    with pytest.raises(InvalidProfile, match="SAE J2012"):
        DtcPoolEntry(0x01, "P9999", 0.1)
    with pytest.raises(InvalidProfile, match="probability"):
        DtcPoolEntry(0x01, "P0420", 2)


def test_signals_must_fit_their_did() -> None:
    with pytest.raises(InvalidProfile, match="live value"):
        SignalProfile(dids.VIN, 0, 1, 0, 1)
    with pytest.raises(InvalidProfile, match="stay within"):
        SignalProfile(dids.VEHICLE_SPEED, 0, 10, 0, 300)
    with pytest.raises(InvalidProfile, match="initial_min"):
        SignalProfile(dids.VEHICLE_SPEED, 50, 10, 0, 100)


def test_ecu_security_levels_are_odd_request_seed_levels() -> None:
    with pytest.raises(InvalidProfile, match="security level 0x02"):
        EcuProfile(0x10, "ECM", "p", "s", "h", "Bosch", "x", security_levels=(0x02,))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"year_min": 2005}, "years"),
        ({"wmi": "WV"}, "wmi"),
        ({"vds": "QQQQQ"}, "VIN characters"),
        ({"ecus": VW_GOLF.ecus + VW_GOLF.ecus[:1]}, "distinct addresses"),
        ({"dtc_pool": (DtcPoolEntry(0x77, "P0420", 0.1),)}, "unknown ECU 0x77"),
        ({"signals": ()}, "undefined signals"),
    ],
)
def test_inconsistent_profiles_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidProfile, match=message):
        attrs.evolve(VW_GOLF, **changes)


def test_profiles_index_their_ecus() -> None:
    assert VW_GOLF.ecu(0x17) is not None
    assert VW_GOLF.ecu(0x42) is None
    assert VW_GOLF.ecu_addresses[:3] == (0x01, 0x02, 0x03)
