"""The `[profiles.NAME]` tables of a fleet config turned into VehicleProfiles: a new
profile names everything, one that `extends` another inherits what it does not name."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from sovd import strict
from sovd.demo import ALL_SIGNALS, DEMO_PROFILES
from sovd.dids import DID_CATALOG, ScaledCodec
from sovd.dtcs import DTC_CATALOG
from sovd.fleet_config import checks
from sovd.fleet_config.defaults import Defaults
from sovd.fleet_config.report import Report
from sovd.fleet_config.wire import DidDoc, DtcDoc, EcuDoc, ProfileDoc
from sovd.profiles import (
    Connectivity,
    DtcPoolEntry,
    EcuProfile,
    FailureModes,
    SignalProfile,
    VehicleProfile,
)

BUILTIN_PROFILES: Mapping[str, VehicleProfile] = types.MappingProxyType(
    {profile.name: profile for profile in DEMO_PROFILES}
)
DEFAULT_SIGNALS: Mapping[int, SignalProfile] = types.MappingProxyType(
    {signal.did: signal for signal in ALL_SIGNALS}
)

_DTC_CODE = re.compile(r"[PCBU][0-9A-F]{4}")
_REQUIRED = ("make", "model", "years", "wmi", "ecus")
_VIN_PARTS = (("wmi", 3), ("vds", 5), ("plant_code", 1))
# What a new profile that does not name them gets.
_NEW_PROFILE = {"make": "", "model": "", "wmi": "", "vds": "ZZZZZ", "plant_code": "A"}


def unknown_profile(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown profile {name!r}{hint}; known: {', '.join(known)}"


@frozen
class BuiltProfile:
    """A profile, and whether it (or one it extends) set the tables `[simulation]` would
    otherwise fill in."""

    profile: VehicleProfile
    sets_failure_modes: bool = False
    sets_connectivity: bool = False


class ProfileBuilder:
    """Builds each profile of a document once, parents before the profiles that extend them."""

    def __init__(
        self,
        docs: Mapping[str, ProfileDoc],
        broken: frozenset[str],
        sim: Defaults,
        report: Report,
    ) -> None:
        self._docs = docs
        self._broken = broken
        self._sim = sim
        self._report = report
        self._built: dict[str, BuiltProfile | None] = {}

    def known(self) -> list[str]:
        return sorted({*self._docs, *self._broken, *BUILTIN_PROFILES})

    def get(self, name: str) -> BuiltProfile | None:
        """The profile called `name`; None if it is unknown or has mistakes (reported)."""
        return self._resolve(name, ())

    def build_all(self) -> None:
        for name in self._docs:
            self._resolve(name, ())

    def _resolve(self, name: str, chain: tuple[str, ...]) -> BuiltProfile | None:
        if name in self._docs:
            if name not in self._built:
                self._built[name] = None
                self._built[name] = self._build(name, self._docs[name], (*chain, name))
            return self._built[name]
        builtin = BUILTIN_PROFILES.get(name)
        return None if builtin is None else BuiltProfile(builtin)

    def _build(self, name: str, doc: ProfileDoc, chain: tuple[str, ...]) -> BuiltProfile | None:
        path = strict.join("profiles", name)
        if not self._own_name(name, path):
            return None
        base: BuiltProfile | None = None
        if doc.extends is not None:
            base = self._base(doc.extends, chain, path)
            if base is None:
                return None
        parent = base.profile if base else None
        checkpoint = self._report.checkpoint()
        self._check_required(doc, parent, path)
        self._check_identity(doc, path)
        signals = self._signals(doc, parent, path)
        ecus_checkpoint = self._report.checkpoint()
        ecus = self._ecus(doc, parent, tuple(signals), path)
        ecus_ok = not self._report.found_since(ecus_checkpoint)
        # A live DID an ECU serves without a [[dids]] entry gets the built-in generator.
        for ecu in ecus.values():
            for did in ecu.signal_dids:
                signals.setdefault(did, DEFAULT_SIGNALS[did])
        dtc_pool = self._dtc_pool(doc, parent, ecus if ecus_ok else None, path)
        failure_modes, sets_failure_modes = self._failure_modes(doc, base, path)
        connectivity, sets_connectivity = self._connectivity(doc, base, path)
        if self._report.found_since(checkpoint):
            return None
        profile = self._report.build(
            path,
            lambda: VehicleProfile(
                name=name,
                **_identity(doc, parent),
                ecus=tuple(ecus.values()),
                dtc_pool=dtc_pool,
                signals=tuple(signals[did] for did in sorted(signals)),
                failure_modes=failure_modes,
                connectivity=connectivity,
            ),
        )
        if profile is None:
            return None
        return BuiltProfile(profile, sets_failure_modes, sets_connectivity)

    def _own_name(self, name: str, path: str) -> bool:
        if not checks.NAME.fullmatch(name):
            self._report.add(path, "a profile name is 1-63 letters, digits, '_', '.', '-'")
            return False
        if name in BUILTIN_PROFILES:
            self._report.add(
                path, f"{name!r} is a built-in profile; pick another name (extends = {name!r})"
            )
            return False
        return True

    def _base(self, extends: str, chain: tuple[str, ...], path: str) -> BuiltProfile | None:
        """The profile `extends` names, built; None if it cannot be (reported once)."""
        if extends in chain:
            self._report.add(f"{path}.extends", f"cycle: {' -> '.join((*chain, extends))}")
            return None
        if extends in self._broken:
            return None
        if extends not in self._docs and extends not in BUILTIN_PROFILES:
            self._report.add(f"{path}.extends", unknown_profile(extends, self.known()))
            return None
        if extends in self._built and self._built[extends] is None:
            return None
        return self._resolve(extends, chain)

    def _check_required(self, doc: ProfileDoc, parent: VehicleProfile | None, path: str) -> None:
        if parent is not None:
            return
        for key in _REQUIRED:
            if getattr(doc, key) is None:
                self._report.add(
                    f"{path}.{key}", "is required (or extends = a profile to start from)"
                )

    def _check_identity(self, doc: ProfileDoc, path: str) -> None:
        """Make, model, model years and the VIN head (WMI, VDS, plant code)."""
        for key in ("make", "model"):
            if getattr(doc, key) == "":
                self._report.add(f"{path}.{key}", "must not be empty")
        if doc.years is not None:
            first, last = doc.years
            if first > last:
                self._report.add(f"{path}.years", f"min {first} > max {last}")
            elif not 2010 <= first <= last <= 2039:
                self._report.add(f"{path}.years", "model years must lie within 2010..2039")
        for key, length in _VIN_PARTS:
            value = getattr(doc, key)
            if value is not None and not checks.vin_text(value, length):
                self._report.add(
                    f"{path}.{key}",
                    f"must be {length} {checks.VIN_CHARACTERS}, got {value!r}",
                )

    def _signals(
        self, doc: ProfileDoc, parent: VehicleProfile | None, path: str
    ) -> dict[int, SignalProfile]:
        """The `[[dids]]` generators by DID, or else the parent's."""
        if doc.dids is None:
            return {signal.did: signal for signal in parent.signals} if parent else {}
        signals: dict[int, SignalProfile] = {}
        for index, did_doc in enumerate(doc.dids):
            where = f"{path}.dids[{index}]"
            signal = _signal(did_doc, where, self._report)
            if signal is not None and signal.did in signals:
                self._report.add(f"{where}.did", f"0x{signal.did:04X} is defined twice")
            elif signal is not None:
                signals[signal.did] = signal
        return signals

    def _ecus(
        self,
        doc: ProfileDoc,
        parent: VehicleProfile | None,
        default_dids: tuple[int, ...],
        path: str,
    ) -> dict[int, EcuProfile]:
        """The `[[ecus]]` by address, or else the parent's."""
        if doc.ecus is None:
            return {ecu.address: ecu for ecu in parent.ecus} if parent else {}
        ecus: dict[int, EcuProfile] = {}
        for index, ecu_doc in enumerate(doc.ecus):
            where = f"{path}.ecus[{index}]"
            ecu = _ecu(ecu_doc, where, default_dids, self._report)
            if ecu is not None and ecu.address in ecus:
                self._report.add(f"{where}.address", f"0x{ecu.address:02X} is used by two ECUs")
            elif ecu is not None:
                ecus[ecu.address] = ecu
        if not doc.ecus:
            self._report.add(f"{path}.ecus", "needs at least one ECU")
        return ecus

    def _dtc_pool(
        self,
        doc: ProfileDoc,
        parent: VehicleProfile | None,
        ecus: Mapping[int, EcuProfile] | None,
        path: str,
    ) -> tuple[DtcPoolEntry, ...]:
        """The `[[dtcs]]`, or else the parent's; `ecus` is None when they have mistakes."""
        if doc.dtcs is None:
            return parent.dtc_pool if parent else ()
        entries = [
            _dtc(dtc_doc, f"{path}.dtcs[{index}]", ecus, self._report)
            for index, dtc_doc in enumerate(doc.dtcs)
        ]
        return tuple(entry for entry in entries if entry is not None)

    def _failure_modes(
        self, doc: ProfileDoc, base: BuiltProfile | None, path: str
    ) -> tuple[FailureModes, bool]:
        """The profile's failure modes, and whether it (or what it extends) set them."""
        if doc.failure_modes is not None:
            modes = checks.failure_modes(doc.failure_modes, f"{path}.failure_modes", self._report)
            return modes or FailureModes(), True
        if base is not None and base.sets_failure_modes:
            return base.profile.failure_modes, True
        if self._sim.failure_modes is not None:
            return self._sim.failure_modes, False
        return (base.profile.failure_modes if base else FailureModes()), False

    def _connectivity(
        self, doc: ProfileDoc, base: BuiltProfile | None, path: str
    ) -> tuple[Connectivity, bool]:
        """The profile's connectivity, and whether it (or what it extends) set it."""
        if doc.connectivity is not None:
            reach = checks.connectivity(doc.connectivity, f"{path}.connectivity", self._report)
            return reach or Connectivity(), True
        if base is not None and base.sets_connectivity:
            return base.profile.connectivity, True
        if self._sim.connectivity is not None:
            return self._sim.connectivity, False
        return (base.profile.connectivity if base else Connectivity()), False


def _identity(doc: ProfileDoc, parent: VehicleProfile | None) -> dict[str, Any]:
    """Make, model, years and VIN head: as given, or else the parent's (checked before)."""
    identity: dict[str, Any] = {}
    for key, new in _NEW_PROFILE.items():
        given = getattr(doc, key)
        inherited = getattr(parent, key) if parent is not None else new
        identity[key] = given or inherited
    if doc.years is not None:
        identity["year_min"], identity["year_max"] = doc.years
    elif parent is not None:
        identity["year_min"], identity["year_max"] = parent.year_min, parent.year_max
    return identity


def _signal(doc: DidDoc, path: str, report: Report) -> SignalProfile | None:
    did = checks.live_did(doc.did, f"{path}.did", report)
    if did is None:
        return None
    codec = DID_CATALOG[did].codec
    assert isinstance(codec, ScaledCodec)
    if doc.value is not None:
        return _fixed_signal(doc, did, codec, path, report)
    low, high = codec.minimum, codec.maximum
    bounds = doc.range if doc.range is not None else (float(low), float(high))
    initial = doc.initial if doc.initial is not None else bounds
    checkpoint = report.checkpoint()
    for key, (first, last) in (("range", bounds), ("initial", initial)):
        if first > last:
            report.add(f"{path}.{key}", f"min {first:g} > max {last:g}")
    if not report.found_since(checkpoint) and not low <= bounds[0] <= bounds[1] <= high:
        report.add(f"{path}.range", f"must lie within {low}..{high} for 0x{did:04X}")
    if not report.found_since(checkpoint) and not (
        bounds[0] <= initial[0] <= initial[1] <= bounds[1]
    ):
        report.add(f"{path}.initial", f"must lie within range {bounds[0]:g}..{bounds[1]:g}")
    if doc.volatility < 0:
        report.add(f"{path}.volatility", f"must be >= 0, got {doc.volatility:g}")
    if doc.settle_s <= 0:
        report.add(f"{path}.settle_s", f"must be > 0, got {doc.settle_s:g}")
    if report.found_since(checkpoint):
        return None
    return report.build(
        path,
        lambda: SignalProfile(
            did,
            initial[0],
            initial[1],
            bounds[0],
            bounds[1],
            volatility=doc.volatility,
            rate_per_hour=doc.rate_per_hour,
            settle_s=doc.settle_s,
        ),
    )


def _fixed_signal(
    doc: DidDoc, did: int, codec: ScaledCodec, path: str, report: Report
) -> SignalProfile | None:
    """A DID entry with `value`: the signal stays at it."""
    if doc.initial is not None or doc.range is not None:
        report.add(path, "give either value (a fixed value) or initial/range (a generator)")
        return None
    value = doc.value
    assert value is not None
    if not codec.minimum <= value <= codec.maximum:
        report.add(
            f"{path}.value", f"must lie within {codec.minimum}..{codec.maximum}, got {value:g}"
        )
        return None
    return SignalProfile(did, value, value, value, value)


def _ecu(
    doc: EcuDoc, path: str, default_dids: tuple[int, ...], report: Report
) -> EcuProfile | None:
    checkpoint = report.checkpoint()
    address = checks.hex_number(doc.address, 2, f"{path}.address", report, "ECU address")
    levels = _security_levels(doc, path, report)
    if doc.live_dids is None:
        signal_dids = default_dids
    else:
        parsed = [
            checks.live_did(raw, f"{path}.live_dids[{index}]", report)
            for index, raw in enumerate(doc.live_dids)
        ]
        signal_dids = tuple(did for did in parsed if did is not None)
    for key in ("name", "part_number", "software_version"):
        if not getattr(doc, key):
            report.add(f"{path}.{key}", "must not be empty")
    if report.found_since(checkpoint) or address is None:
        return None
    return report.build(
        path,
        lambda: EcuProfile(
            address=address,
            name=doc.name,
            part_number=doc.part_number,
            software_version=doc.software_version,
            hardware_number=doc.hardware_number or doc.part_number,
            supplier=doc.supplier or "Generic",
            system_name=doc.system_name or doc.name,
            signal_dids=signal_dids,
            security_levels=levels,
        ),
    )


def _security_levels(doc: EcuDoc, path: str, report: Report) -> tuple[int, ...]:
    """The requestSeed levels the ECU unlocks (level 0x01 unless it names its own)."""
    levels: list[int] = []
    for index, raw in enumerate(doc.security_levels or (0x01,)):
        where = f"{path}.security_levels[{index}]"
        level = checks.hex_number(raw, 2, where, report, "security level")
        if level is not None and not (0x01 <= level <= 0x7D and level % 2 == 1):
            report.add(where, f"0x{level:02X} is not an odd requestSeed level 0x01..0x7D")
        elif level is not None:
            levels.append(level)
    return tuple(levels)


def _dtc(
    doc: DtcDoc, path: str, ecus: Mapping[int, EcuProfile] | None, report: Report
) -> DtcPoolEntry | None:
    """`ecus` is None when the profile's ECUs have mistakes: then any address goes."""
    checkpoint = report.checkpoint()
    address = checks.hex_number(doc.ecu, 2, f"{path}.ecu", report, "ECU address")
    if address is not None and ecus is not None and address not in ecus:
        listed = ", ".join(f"0x{a:02X}" for a in ecus)
        report.add(f"{path}.ecu", f"the profile has no ECU at 0x{address:02X} (has {listed})")
    if not _DTC_CODE.fullmatch(doc.code):
        report.add(f"{path}.code", f"malformed DTC code {doc.code!r}: expected like P0420")
    elif doc.code not in DTC_CATALOG:
        report.add(
            f"{path}.code",
            f"{doc.code} is not in the DTC catalog (sovd/dtcs.py), so it has no description",
        )
    checks.probability(doc.probability, f"{path}.probability", report)
    status = checks.hex_number(doc.status, 2, f"{path}.status", report, "UDS status byte")
    if status == 0:
        report.add(f"{path}.status", "must have at least one status bit set (0x01..0xFF)")
    if doc.reappear_per_hour < 0:
        report.add(f"{path}.reappear_per_hour", f"must be >= 0, got {doc.reappear_per_hour:g}")
    if report.found_since(checkpoint) or address is None or status is None:
        return None
    return report.build(
        path,
        lambda: DtcPoolEntry(address, doc.code, doc.probability, status, doc.reappear_per_hour),
    )
