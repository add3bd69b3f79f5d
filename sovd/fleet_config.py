"""The fleet config (SPEC §5): one document that describes a simulation, parsed strictly.

A TOML file, or its JSON twin for `POST /api/v1/fleets`, has three parts:

- `[simulation]`: defaults for the fleets of this document (seed, latency, failure modes,
  connectivity, command deadline, mailbox size);
- `[profiles.NAME]`: vehicle models, new ones or ones that `extends` another profile;
- `[[fleets]]`: `count` vehicles of one profile, with per-fleet overrides.

Settings resolve from the most specific: fleet > profile > `[simulation]` > built-in
profile > the server's own defaults (`--latency-ms`, `SOVD_SEED`, ...). A table given at
one level replaces the whole table below it (no key-by-key merge).

Parsing never coerces (`"3"` is not a count), rejects unknown keys and reports every problem
it finds with its key path (`fleets[2].count: must be >= 0`). DTC codes must be in the
catalog of `sovd.dtcs` and DIDs in the one of `sovd.dids`, so a reply always has a
description. The result holds, per fleet, the domain `FleetSpec` and a self-contained
document of the same schema that rebuilds exactly that fleet: what a store records.
Pure: the caller reads the file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

import attrs
from attrs import field, frozen

from sovd import strict
from sovd.demo import ALL_SIGNALS, DEMO_PROFILES
from sovd.dids import DID_CATALOG, IDENTIFICATION_DIDS, ScaledCodec
from sovd.dtcs import DTC_CATALOG
from sovd.errors import InvalidProfile, SovdError
from sovd.fleet import (
    MAX_FLEET_SIZE,
    FleetSpec,
    LatencyRange,
    first_shared_vin,
)
from sovd.profiles import (
    Connectivity,
    DtcPoolEntry,
    EcuProfile,
    FailureModes,
    SignalProfile,
    VehicleProfile,
)

T = TypeVar("T")

BUILTIN_PROFILES: Mapping[str, VehicleProfile] = types.MappingProxyType(
    {profile.name: profile for profile in DEMO_PROFILES}
)
DEFAULT_SIGNALS: Mapping[int, SignalProfile] = types.MappingProxyType(
    {signal.did: signal for signal in ALL_SIGNALS}
)
LIVE_DIDS = tuple(
    sorted(did for did, info in DID_CATALOG.items() if isinstance(info.codec, ScaledCodec))
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_VIN_TEXT = re.compile(r"[A-HJ-NPR-Z0-9]*")
_DTC_CODE = re.compile(r"[PCBU][0-9A-F]{4}")
_TOML_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")

Hex = str | int
"""A hex number: `"0x10"` (any document) or `0x10` (a TOML hex integer)."""


# The wire model: what a document may contain, key for key. `None` means "not given here".


@frozen
class LatencyDoc:
    min_ms: float
    max_ms: float
    distribution: Literal["uniform", "normal", "lognormal"] = "uniform"
    mean_ms: float | None = None
    stddev_ms: float | None = None
    median_ms: float | None = None
    sigma: float | None = None


@frozen
class FailureModesDoc:
    negative_response: float = 0.0
    response_pending: float = 0.0
    timeout: float = 0.0
    connection_drop: float = 0.0
    pending_delay_s: float = 2.0


@frozen
class ConnectivityDoc:
    intermittent: float = 0.0
    disconnected: float = 0.0
    intermittent_loss: float = 0.25
    when_disconnected: Literal["fail", "wait"] = "fail"


@frozen
class EcuDoc:
    address: Hex
    name: str
    part_number: str
    software_version: str
    hardware_number: str | None = None
    supplier: str = "Generic"
    system_name: str | None = None
    live_dids: tuple[Hex, ...] | None = None
    security_levels: tuple[Hex, ...] | None = None


@frozen
class DtcDoc:
    ecu: Hex
    code: str
    probability: float
    status: Hex = 0x2F
    reappear_per_hour: float = 0.0


@frozen
class DidDoc:
    did: Hex
    value: float | None = None
    initial: tuple[float, float] | None = None
    range: tuple[float, float] | None = None
    volatility: float = 0.0
    rate_per_hour: float = 0.0
    settle_s: float = 300.0


@frozen
class ProfileDoc:
    extends: str | None = None
    make: str | None = None
    model: str | None = None
    years: tuple[int, int] | None = None
    wmi: str | None = None
    vds: str | None = None
    plant_code: str | None = None
    ecus: tuple[EcuDoc, ...] | None = None
    dtcs: tuple[DtcDoc, ...] | None = None
    dids: tuple[DidDoc, ...] | None = None
    failure_modes: FailureModesDoc | None = None
    connectivity: ConnectivityDoc | None = None


@frozen
class SimulationDoc:
    seed: int | None = None
    latency: LatencyDoc | None = None
    failure_modes: FailureModesDoc | None = None
    connectivity: ConnectivityDoc | None = None
    command_deadline_s: float | None = None
    mailbox_size: int | None = None


@frozen
class FleetDoc:
    name: str
    count: int
    profile: str
    seed: int | None = None
    vin_prefix: str | None = None
    wmi: str | None = None
    latency: LatencyDoc | None = None
    failure_modes: FailureModesDoc | None = None
    connectivity: ConnectivityDoc | None = None
    command_deadline_s: float | None = None
    mailbox_size: int | None = None


@frozen
class FleetConfigDoc:
    fleets: tuple[FleetDoc, ...]
    simulation: SimulationDoc = SimulationDoc()
    profiles: dict[str, ProfileDoc] = field(factory=dict)


# What parsing produces.


@frozen
class ConfigProblem:
    """One mistake: `path` is the key path (`fleets[2].count`), `message` what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidFleetConfig(SovdError):
    """A fleet config with mistakes; `lines()` gives one `SOURCE: PATH: MESSAGE` each."""

    def __init__(self, source: str, problems: Iterable[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}: {problem}" for problem in self.problems]


@frozen
class FleetPlan:
    """One fleet ready to spawn, and the document (same schema) that rebuilds it alone."""

    spec: FleetSpec
    definition: dict[str, Any] = field(eq=False)


@frozen
class FleetConfig:
    source: str
    plans: tuple[FleetPlan, ...]

    @property
    def fleets(self) -> tuple[FleetSpec, ...]:
        return tuple(plan.spec for plan in self.plans)

    @property
    def vehicle_count(self) -> int:
        return sum(plan.spec.count for plan in self.plans)


# The converter: strict scalars, lists for sequences, unknown keys rejected.

_KINDS = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "list",
    tuple: "list",
    dict: "table",
}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


DIALECT = strict.Dialect(
    names={
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        Hex: 'a hex string like "0x10" or an integer',
    },
    given=_kind,
)
converter = strict.converter(DIALECT, omit_defaults=True)
_join = strict.join


def _structure_problems(exc: BaseException, path: str) -> list[ConfigProblem]:
    return [ConfigProblem(*problem) for problem in strict.problems(exc, DIALECT, path)]


# Checks of the values, each problem reported with its path.


class _Report:
    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    def build(self, path: str, make: Callable[[], T]) -> T | None:
        """Runs a domain constructor; its InvalidProfile becomes a problem at `path`."""
        try:
            return make()
        except InvalidProfile as exc:
            self.add(path, str(exc))
            return None


def _hex(raw: Hex, digits: int, path: str, report: _Report, what: str) -> int | None:
    limit = 16**digits
    example = "0x10" if digits == 2 else "0xF40D"
    if isinstance(raw, int):
        if 0 <= raw < limit:
            return raw
        report.add(path, f"{what} must be 0x{0:0{digits}X}..0x{limit - 1:X}, got {raw}")
        return None
    if re.fullmatch(rf"0x[0-9A-Fa-f]{{{digits}}}", raw):
        return int(raw, 16)
    report.add(path, f'malformed {what}: expected hex like "{example}", got {raw!r}')
    return None


def _probability(value: float, path: str, report: _Report) -> bool:
    if 0.0 <= value <= 1.0:
        return True
    report.add(path, f"must be a probability between 0 and 1, got {value:g}")
    return False


def _latency(doc: LatencyDoc, path: str, report: _Report) -> LatencyRange | None:
    ok = True
    if doc.min_ms < 0:
        report.add(f"{path}.min_ms", f"must be >= 0, got {doc.min_ms:g}")
        ok = False
    if doc.max_ms < doc.min_ms:
        report.add(f"{path}.max_ms", f"must be >= min_ms ({doc.min_ms:g}), got {doc.max_ms:g}")
        ok = False
    center: float | None = None
    spread: float | None = None
    own = {"normal": ("mean_ms", "stddev_ms"), "lognormal": ("median_ms", "sigma")}
    for distribution, keys in own.items():
        if doc.distribution == distribution:
            continue
        for key in keys:
            if getattr(doc, key) is not None:
                report.add(f"{path}.{key}", f"only applies to distribution = {distribution!r}")
                ok = False
    if doc.distribution == "normal":
        center = doc.mean_ms if doc.mean_ms is not None else (doc.min_ms + doc.max_ms) / 2
        spread = doc.stddev_ms if doc.stddev_ms is not None else (doc.max_ms - doc.min_ms) / 6
        center_key, spread_key = "mean_ms", "stddev_ms"
    elif doc.distribution == "lognormal":
        center = doc.median_ms
        if center is None:
            center = max(doc.min_ms, min(doc.max_ms, (doc.min_ms + doc.max_ms) / 4))
        spread = doc.sigma if doc.sigma is not None else 0.5
        center_key, spread_key = "median_ms", "sigma"
    if center is not None and spread is not None and ok:
        if not doc.min_ms <= center <= doc.max_ms:
            report.add(
                f"{path}.{center_key}",
                f"must lie within min_ms..max_ms ({doc.min_ms:g}..{doc.max_ms:g}), got {center:g}",
            )
            ok = False
        if doc.distribution == "lognormal" and center <= 0:
            report.add(f"{path}.{center_key}", "must be > 0")
            ok = False
        if spread <= 0 and doc.max_ms > doc.min_ms:
            report.add(f"{path}.{spread_key}", f"must be > 0, got {spread:g}")
            ok = False
    if not ok:
        return None
    if doc.distribution == "uniform" or doc.max_ms == doc.min_ms:
        return LatencyRange(doc.min_ms / 1000, doc.max_ms / 1000)
    assert center is not None and spread is not None
    return LatencyRange(
        doc.min_ms / 1000,
        doc.max_ms / 1000,
        doc.distribution,
        center / 1000,
        spread / 1000 if doc.distribution == "normal" else spread,
    )


def _failure_modes(doc: FailureModesDoc, path: str, report: _Report) -> FailureModes | None:
    rates = ("negative_response", "response_pending", "timeout", "connection_drop")
    ok = all([_probability(getattr(doc, name), f"{path}.{name}", report) for name in rates])
    if doc.pending_delay_s < 0:
        report.add(f"{path}.pending_delay_s", f"must be >= 0, got {doc.pending_delay_s:g}")
        ok = False
    total = sum(getattr(doc, name) for name in rates)
    if ok and total > 1.0:
        report.add(path, f"the probabilities add up to {total:g}, more than 1")
        ok = False
    if not ok:
        return None
    return report.build(path, lambda: FailureModes(**converter.unstructure(doc)))


def _connectivity(doc: ConnectivityDoc, path: str, report: _Report) -> Connectivity | None:
    shares = ("intermittent", "disconnected", "intermittent_loss")
    ok = all([_probability(getattr(doc, name), f"{path}.{name}", report) for name in shares])
    if ok and doc.intermittent + doc.disconnected > 1.0:
        report.add(path, "intermittent + disconnected add up to more than 1")
        ok = False
    if not ok:
        return None
    return Connectivity(
        doc.intermittent, doc.disconnected, doc.intermittent_loss, doc.when_disconnected
    )


def _positive_deadline(value: float | None, path: str, report: _Report) -> float | None:
    if value is not None and not value > 0:
        report.add(path, f"must be > 0, got {value:g}")
        return None
    return value


def _mailbox_size(value: int | None, path: str, report: _Report) -> int | None:
    if value is not None and value < 1:
        report.add(path, f"must be >= 1, got {value}")
        return None
    return value


def _live_did(raw: Hex, path: str, report: _Report) -> int | None:
    did = _hex(raw, 4, path, report, "DID")
    if did is None:
        return None
    info = DID_CATALOG.get(did)
    if info is not None and isinstance(info.codec, ScaledCodec):
        return did
    known = ", ".join(f"0x{d:04X} ({DID_CATALOG[d].description})" for d in LIVE_DIDS)
    if did in IDENTIFICATION_DIDS:
        report.add(
            path,
            f"0x{did:04X} is an identification DID every ECU serves (set part_number, "
            f"software_version, ... on the ECU); live values are {known}",
        )
    else:
        report.add(path, f"0x{did:04X} is not a live value in the DID catalog; known: {known}")
    return None


def _signal(doc: DidDoc, path: str, report: _Report) -> SignalProfile | None:
    did = _live_did(doc.did, f"{path}.did", report)
    if did is None:
        return None
    codec = DID_CATALOG[did].codec
    assert isinstance(codec, ScaledCodec)
    low, high = codec.minimum, codec.maximum
    if doc.value is not None:
        if doc.initial is not None or doc.range is not None:
            report.add(path, "give either value (a fixed value) or initial/range (a generator)")
            return None
        if not low <= doc.value <= high:
            report.add(f"{path}.value", f"must lie within {low}..{high}, got {doc.value:g}")
            return None
        value = doc.value
        return SignalProfile(did, value, value, value, value)
    bounds = doc.range if doc.range is not None else (float(low), float(high))
    initial = doc.initial if doc.initial is not None else bounds
    ok = True
    for key, (first, last) in (("range", bounds), ("initial", initial)):
        if first > last:
            report.add(f"{path}.{key}", f"min {first:g} > max {last:g}")
            ok = False
    if ok and not low <= bounds[0] <= bounds[1] <= high:
        report.add(f"{path}.range", f"must lie within {low}..{high} for 0x{did:04X}")
        ok = False
    if ok and not bounds[0] <= initial[0] <= initial[1] <= bounds[1]:
        report.add(f"{path}.initial", f"must lie within range {bounds[0]:g}..{bounds[1]:g}")
        ok = False
    if doc.volatility < 0:
        report.add(f"{path}.volatility", f"must be >= 0, got {doc.volatility:g}")
        ok = False
    if doc.settle_s <= 0:
        report.add(f"{path}.settle_s", f"must be > 0, got {doc.settle_s:g}")
        ok = False
    if not ok:
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


def _ecu(
    doc: EcuDoc, path: str, default_dids: tuple[int, ...], report: _Report
) -> EcuProfile | None:
    address = _hex(doc.address, 2, f"{path}.address", report, "ECU address")
    ok = address is not None
    levels: list[int] = []
    for index, raw in enumerate(doc.security_levels or (0x01,)):
        where = f"{path}.security_levels[{index}]"
        level = _hex(raw, 2, where, report, "security level")
        if level is not None and not (0x01 <= level <= 0x7D and level % 2 == 1):
            report.add(where, f"0x{level:02X} is not an odd requestSeed level 0x01..0x7D")
            level = None
        ok = ok and level is not None
        levels.append(level or 0)
    if doc.live_dids is None:
        signal_dids = default_dids
    else:
        parsed = [
            _live_did(raw, f"{path}.live_dids[{index}]", report)
            for index, raw in enumerate(doc.live_dids)
        ]
        ok = ok and None not in parsed
        signal_dids = tuple(did for did in parsed if did is not None)
    for key in ("name", "part_number", "software_version"):
        if not getattr(doc, key):
            report.add(f"{path}.{key}", "must not be empty")
            ok = False
    if not ok or address is None:
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
            security_levels=tuple(levels),
        ),
    )


def _dtc(
    doc: DtcDoc, path: str, ecus: Mapping[int, EcuProfile] | None, report: _Report
) -> DtcPoolEntry | None:
    """`ecus` is None when the profile's ECUs have mistakes: then any address goes."""
    ok = True
    address = _hex(doc.ecu, 2, f"{path}.ecu", report, "ECU address")
    if address is not None and ecus is not None and address not in ecus:
        listed = ", ".join(f"0x{a:02X}" for a in ecus)
        report.add(f"{path}.ecu", f"the profile has no ECU at 0x{address:02X} (has {listed})")
        ok = False
    if not _DTC_CODE.fullmatch(doc.code):
        report.add(f"{path}.code", f"malformed DTC code {doc.code!r}: expected like P0420")
        ok = False
    elif doc.code not in DTC_CATALOG:
        report.add(
            f"{path}.code",
            f"{doc.code} is not in the DTC catalog (sovd/dtcs.py), so it has no description",
        )
        ok = False
    ok = _probability(doc.probability, f"{path}.probability", report) and ok
    status = _hex(doc.status, 2, f"{path}.status", report, "UDS status byte")
    if status == 0:
        report.add(f"{path}.status", "must have at least one status bit set (0x01..0xFF)")
        status = None
    if doc.reappear_per_hour < 0:
        report.add(f"{path}.reappear_per_hour", f"must be >= 0, got {doc.reappear_per_hour:g}")
        ok = False
    if not ok or address is None or status is None:
        return None
    return report.build(
        path,
        lambda: DtcPoolEntry(address, doc.code, doc.probability, status, doc.reappear_per_hour),
    )


def _unknown_profile(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown profile {name!r}{hint}; known: {', '.join(known)}"


@frozen
class _BuiltProfile:
    profile: VehicleProfile
    sets_failure_modes: bool = False
    sets_connectivity: bool = False


class _ProfileBuilder:
    def __init__(
        self,
        docs: Mapping[str, ProfileDoc],
        broken: frozenset[str],
        sim: _Defaults,
        report: _Report,
    ) -> None:
        self._docs = docs
        self._broken = broken
        self._sim = sim
        self._report = report
        self._built: dict[str, _BuiltProfile | None] = {}

    def known(self) -> list[str]:
        return sorted({*self._docs, *self._broken, *BUILTIN_PROFILES})

    def get(self, name: str) -> _BuiltProfile | None:
        """The profile called `name`; None if it is unknown or has mistakes (reported)."""
        return self._resolve(name, ())

    def build_all(self) -> None:
        for name in self._docs:
            self._resolve(name, ())

    def _resolve(self, name: str, chain: tuple[str, ...]) -> _BuiltProfile | None:
        if name in self._docs:
            if name not in self._built:
                self._built[name] = None
                self._built[name] = self._build(name, self._docs[name], (*chain, name))
            return self._built[name]
        builtin = BUILTIN_PROFILES.get(name)
        return None if builtin is None else _BuiltProfile(builtin)

    def _build(self, name: str, doc: ProfileDoc, chain: tuple[str, ...]) -> _BuiltProfile | None:
        report = self._report
        path = _join("profiles", name)
        if not _NAME.fullmatch(name):
            report.add(path, "a profile name is 1-63 letters, digits, '_', '.', '-'")
            return None
        if name in BUILTIN_PROFILES:
            report.add(
                path, f"{name!r} is a built-in profile; pick another name (extends = {name!r})"
            )
            return None
        base: _BuiltProfile | None = None
        if doc.extends is not None:
            if doc.extends in chain:
                report.add(f"{path}.extends", f"cycle: {' -> '.join((*chain, doc.extends))}")
                return None
            if doc.extends in self._broken:
                return None
            if doc.extends not in self._docs and doc.extends not in BUILTIN_PROFILES:
                report.add(f"{path}.extends", _unknown_profile(doc.extends, self.known()))
                return None
            if (
                doc.extends in self._docs
                and doc.extends in self._built
                and (self._built[doc.extends] is None)
            ):
                return None
            base = self._resolve(doc.extends, chain)
            if base is None:
                return None
        parent = base.profile if base else None

        ok = True
        required: dict[str, Any] = {}
        for key in ("make", "model", "years", "wmi", "ecus"):
            value = getattr(doc, key)
            if value is None and parent is None:
                report.add(f"{path}.{key}", "is required (or extends = a profile to start from)")
                ok = False
            required[key] = value
        for key in ("make", "model"):
            if getattr(doc, key) == "":
                report.add(f"{path}.{key}", "must not be empty")
                ok = False
        if doc.years is not None:
            first, last = doc.years
            if first > last:
                report.add(f"{path}.years", f"min {first} > max {last}")
                ok = False
            elif not 2010 <= first <= last <= 2039:
                report.add(f"{path}.years", "model years must lie within 2010..2039")
                ok = False
        vin_parts = (("wmi", doc.wmi, 3), ("vds", doc.vds, 5), ("plant_code", doc.plant_code, 1))
        for key, value, length in vin_parts:
            if value is not None and (len(value) != length or not _VIN_TEXT.fullmatch(value)):
                report.add(
                    f"{path}.{key}",
                    f"must be {length} VIN characters (0-9, A-Z without I, O, Q), got {value!r}",
                )
                ok = False

        signals: dict[int, SignalProfile] = {}
        if doc.dids is not None:
            for index, did_doc in enumerate(doc.dids):
                where = f"{path}.dids[{index}]"
                signal = _signal(did_doc, where, report)
                if signal is None:
                    ok = False
                elif signal.did in signals:
                    report.add(f"{where}.did", f"0x{signal.did:04X} is defined twice")
                    ok = False
                else:
                    signals[signal.did] = signal
        elif parent is not None:
            signals = {signal.did: signal for signal in parent.signals}

        ecus: dict[int, EcuProfile] = {}
        problems_before_ecus = len(report.problems)
        if doc.ecus is not None:
            for index, ecu_doc in enumerate(doc.ecus):
                where = f"{path}.ecus[{index}]"
                ecu = _ecu(ecu_doc, where, tuple(signals), report)
                if ecu is None:
                    ok = False
                elif ecu.address in ecus:
                    report.add(f"{where}.address", f"0x{ecu.address:02X} is used by two ECUs")
                    ok = False
                else:
                    ecus[ecu.address] = ecu
            if not doc.ecus:
                report.add(f"{path}.ecus", "needs at least one ECU")
                ok = False
        elif parent is not None:
            ecus = {ecu.address: ecu for ecu in parent.ecus}
        ecus_ok = len(report.problems) == problems_before_ecus
        # A live DID an ECU serves without a [[dids]] entry gets the built-in generator.
        for ecu in ecus.values():
            for did in ecu.signal_dids:
                if did not in signals:
                    signals[did] = DEFAULT_SIGNALS[did]

        dtc_pool: tuple[DtcPoolEntry, ...] = ()
        if doc.dtcs is not None:
            entries = [
                _dtc(dtc_doc, f"{path}.dtcs[{index}]", ecus if ecus_ok else None, report)
                for index, dtc_doc in enumerate(doc.dtcs)
            ]
            ok = ok and None not in entries
            dtc_pool = tuple(entry for entry in entries if entry is not None)
        elif parent is not None:
            dtc_pool = parent.dtc_pool

        failure_modes = parent.failure_modes if parent else FailureModes()
        sets_failure_modes = bool(base and base.sets_failure_modes)
        if doc.failure_modes is not None:
            modes = _failure_modes(doc.failure_modes, f"{path}.failure_modes", report)
            ok = ok and modes is not None
            failure_modes = modes or failure_modes
            sets_failure_modes = True
        elif not sets_failure_modes and self._sim.failure_modes is not None:
            failure_modes = self._sim.failure_modes

        connectivity = parent.connectivity if parent else Connectivity()
        sets_connectivity = bool(base and base.sets_connectivity)
        if doc.connectivity is not None:
            reach = _connectivity(doc.connectivity, f"{path}.connectivity", report)
            ok = ok and reach is not None
            connectivity = reach or connectivity
            sets_connectivity = True
        elif not sets_connectivity and self._sim.connectivity is not None:
            connectivity = self._sim.connectivity

        if not ok:
            return None
        years = doc.years
        if years is None:
            assert parent is not None
            years = (parent.year_min, parent.year_max)
        profile = report.build(
            path,
            lambda: VehicleProfile(
                name=name,
                make=doc.make or (parent.make if parent else ""),
                model=doc.model or (parent.model if parent else ""),
                year_min=years[0],
                year_max=years[1],
                wmi=doc.wmi or (parent.wmi if parent else ""),
                vds=doc.vds or (parent.vds if parent else "ZZZZZ"),
                plant_code=doc.plant_code or (parent.plant_code if parent else "A"),
                ecus=tuple(ecus.values()),
                dtc_pool=dtc_pool,
                signals=tuple(signals[did] for did in sorted(signals)),
                failure_modes=failure_modes,
                connectivity=connectivity,
            ),
        )
        if profile is None:
            return None
        return _BuiltProfile(profile, sets_failure_modes, sets_connectivity)


@frozen
class _Defaults:
    """The `[simulation]` table, checked."""

    seed: int
    latency: LatencyRange | None
    failure_modes: FailureModes | None
    connectivity: Connectivity | None
    command_deadline_s: float | None
    mailbox_size: int | None


def _defaults(doc: SimulationDoc, default_seed: int, report: _Report) -> _Defaults:
    return _Defaults(
        seed=doc.seed if doc.seed is not None else default_seed,
        latency=_latency(doc.latency, "simulation.latency", report) if doc.latency else None,
        failure_modes=(
            _failure_modes(doc.failure_modes, "simulation.failure_modes", report)
            if doc.failure_modes
            else None
        ),
        connectivity=(
            _connectivity(doc.connectivity, "simulation.connectivity", report)
            if doc.connectivity
            else None
        ),
        command_deadline_s=_positive_deadline(
            doc.command_deadline_s, "simulation.command_deadline_s", report
        ),
        mailbox_size=_mailbox_size(doc.mailbox_size, "simulation.mailbox_size", report),
    )


def _fleet(
    doc: FleetDoc, path: str, sim: _Defaults, profiles: _ProfileBuilder, report: _Report
) -> FleetSpec | None:
    ok = True
    if not _NAME.fullmatch(doc.name):
        report.add(f"{path}.name", "a fleet name is 1-63 letters, digits, '_', '.', '-'")
        ok = False
    if doc.count < 0:
        report.add(f"{path}.count", f"must be >= 0, got {doc.count}")
        ok = False
    elif doc.count > MAX_FLEET_SIZE:
        report.add(f"{path}.count", f"must be <= {MAX_FLEET_SIZE:,}, got {doc.count:,}")
        ok = False
    built = profiles.get(doc.profile)
    if built is None:
        ok = False
        if doc.profile not in profiles.known():
            report.add(f"{path}.profile", _unknown_profile(doc.profile, profiles.known()))
    vin_prefix = doc.vin_prefix
    if doc.vin_prefix is not None and doc.wmi is not None:
        report.add(path, "give vin_prefix or wmi, not both")
        ok = False
    elif doc.wmi is not None:
        if len(doc.wmi) != 3 or not _VIN_TEXT.fullmatch(doc.wmi):
            report.add(f"{path}.wmi", "must be 3 VIN characters (0-9, A-Z without I, O, Q)")
            ok = False
        vin_prefix = doc.wmi
    elif doc.vin_prefix is not None and not (
        3 <= len(doc.vin_prefix) <= 8 and _VIN_TEXT.fullmatch(doc.vin_prefix)
    ):
        report.add(
            f"{path}.vin_prefix",
            f"must be 3-8 VIN characters (0-9, A-Z without I, O, Q), got {doc.vin_prefix!r}",
        )
        ok = False
    latency = _latency(doc.latency, f"{path}.latency", report) if doc.latency else sim.latency
    ok = ok and (doc.latency is None or latency is not None)
    failure_modes: FailureModes | None = None
    if doc.failure_modes is not None:
        failure_modes = _failure_modes(doc.failure_modes, f"{path}.failure_modes", report)
        ok = ok and failure_modes is not None
    elif built is not None and built.profile.name in BUILTIN_PROFILES:
        failure_modes = sim.failure_modes
    connectivity: Connectivity | None = None
    if doc.connectivity is not None:
        connectivity = _connectivity(doc.connectivity, f"{path}.connectivity", report)
        ok = ok and connectivity is not None
    elif built is not None and built.profile.name in BUILTIN_PROFILES:
        connectivity = sim.connectivity
    deadline = _positive_deadline(doc.command_deadline_s, f"{path}.command_deadline_s", report)
    mailbox_size = _mailbox_size(doc.mailbox_size, f"{path}.mailbox_size", report)
    ok = ok and (doc.command_deadline_s is None or deadline is not None)
    ok = ok and (doc.mailbox_size is None or mailbox_size is not None)
    if not ok or built is None:
        return None
    profile = built.profile
    return report.build(
        path,
        lambda: FleetSpec(
            name=doc.name,
            profile=profile,
            count=doc.count,
            seed=doc.seed if doc.seed is not None else sim.seed,
            vin_prefix=vin_prefix,
            latency=latency,
            failure_modes=failure_modes,
            connectivity=connectivity,
            command_deadline_s=deadline if deadline is not None else sim.command_deadline_s,
            mailbox_size=mailbox_size if mailbox_size is not None else sim.mailbox_size,
        ),
    )


def _definition(doc: FleetConfigDoc, fleet: FleetDoc, seed: int) -> dict[str, Any]:
    """A document of the same schema holding only `fleet`, its seed resolved."""
    used: dict[str, ProfileDoc] = {}
    name: str | None = fleet.profile
    while name is not None and name in doc.profiles and name not in used:
        used[name] = doc.profiles[name]
        name = used[name].extends
    alone = FleetConfigDoc(
        fleets=(attrs.evolve(fleet, seed=seed),),
        simulation=attrs.evolve(doc.simulation, seed=None),
        profiles=used,
    )
    definition: dict[str, Any] = converter.unstructure(alone)
    return definition


def _structure_part(value: object, cls: type[T], path: str, report: _Report) -> T | None:
    try:
        return converter.structure(value, cls)
    except strict.STRUCTURE_ERRORS as exc:
        report.problems.extend(_structure_problems(exc, path))
        return None


@frozen
class _Parts:
    """What structured of a document: the fleets with their index in it, and the names
    of the profiles that did not structure (their mistakes are reported already)."""

    doc: FleetConfigDoc
    fleets: tuple[tuple[int, FleetDoc], ...]
    broken_profiles: frozenset[str]


def _structure_parts(document: object, report: _Report) -> _Parts:
    """The wire model of a decoded document, part by part, so that one broken fleet does
    not hide the mistakes of the others."""
    if not isinstance(document, dict):
        report.add("", f"expected a table at the top, got {_kind(document)}")
        return _Parts(FleetConfigDoc(fleets=()), (), frozenset())
    for key in document:
        if key not in ("simulation", "profiles", "fleets"):
            report.add(_join("", key), "unknown key (known: simulation, profiles, fleets)")
    simulation = _structure_part(
        document.get("simulation", {}), SimulationDoc, "simulation", report
    )
    profiles: dict[str, ProfileDoc] = {}
    broken: set[str] = set()
    raw_profiles = document.get("profiles", {})
    if isinstance(raw_profiles, dict):
        for name, raw in raw_profiles.items():
            if not isinstance(name, str):
                report.add("profiles", f"a profile name is text, got {name!r}")
                continue
            profile = _structure_part(raw, ProfileDoc, _join("profiles", name), report)
            if profile is None:
                broken.add(name)
            else:
                profiles[name] = profile
    else:
        report.add("profiles", f"expected a table, got {_kind(raw_profiles)}")
    fleets: list[tuple[int, FleetDoc]] = []
    raw_fleets = document.get("fleets")
    if raw_fleets is None:
        report.add("fleets", "is required: at least one [[fleets]] entry")
    elif isinstance(raw_fleets, list):
        if not raw_fleets:
            report.add("fleets", "needs at least one [[fleets]] entry")
        for index, raw in enumerate(raw_fleets):
            fleet = _structure_part(raw, FleetDoc, f"fleets[{index}]", report)
            if fleet is not None:
                fleets.append((index, fleet))
    else:
        report.add("fleets", f"expected a list of tables ([[fleets]]), got {_kind(raw_fleets)}")
    doc = FleetConfigDoc(
        fleets=tuple(fleet for _, fleet in fleets),
        simulation=simulation or SimulationDoc(),
        profiles=profiles,
    )
    return _Parts(doc, tuple(fleets), frozenset(broken))


def parse_fleet_config(
    document: object, *, source: str = "<fleet config>", default_seed: int = 0
) -> FleetConfig:
    """A decoded document (TOML or JSON) -> the fleets it describes, all or nothing.

    `default_seed` is the seed of fleets for which neither the fleet nor `[simulation]`
    names one. Raises InvalidFleetConfig with every problem found.
    """
    report = _Report()
    parts = _structure_parts(document, report)
    doc = parts.doc
    sim = _defaults(doc.simulation, default_seed, report)
    profiles = _ProfileBuilder(doc.profiles, parts.broken_profiles, sim, report)
    profiles.build_all()
    plans: list[FleetPlan] = []
    seen: dict[str, int] = {}
    for index, fleet_doc in parts.fleets:
        path = f"fleets[{index}]"
        if fleet_doc.name in seen:
            report.add(f"{path}.name", f"{fleet_doc.name!r} is also fleets[{seen[fleet_doc.name]}]")
            continue
        seen[fleet_doc.name] = index
        spec = _fleet(fleet_doc, path, sim, profiles, report)
        if spec is not None:
            plans.append(FleetPlan(spec, _definition(doc, fleet_doc, spec.seed)))
    if not report.problems:
        for later, plan in enumerate(plans):
            for earlier in plans[:later]:
                shared = first_shared_vin(earlier.spec, plan.spec)
                if shared is not None:
                    report.add(
                        f"fleets[{later}].vin_prefix",
                        f"VIN {shared} would also belong to fleet {earlier.spec.name!r} "
                        "(same profile VIN head); give one of them another vin_prefix",
                    )
                    break
    if report.problems:
        raise InvalidFleetConfig(source, report.problems)
    return FleetConfig(source, tuple(plans))


def loads_fleet_config(text: str, *, source: str, default_seed: int = 0) -> FleetConfig:
    """TOML text -> the fleets it describes; `source` names it in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.match(str(exc))
        if match is None:
            raise InvalidFleetConfig(source, [ConfigProblem("", f"invalid TOML: {exc}")]) from None
        where = f"line {match['line']}, column {match['column']}"
        raise InvalidFleetConfig(
            source, [ConfigProblem(where, f"invalid TOML: {match['message']}")]
        ) from None
    return parse_fleet_config(document, source=source, default_seed=default_seed)
