"""The fleet config's wire model: attrs classes that mirror the document key for key, its
strict converter, and the structuring of a decoded document part by part."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from attrs import field, frozen

from sovd import strict
from sovd.fleet_config.report import Report

T = TypeVar("T")

Hex = str | int
"""A hex number: `"0x10"` (any document) or `0x10` (a TOML hex integer)."""


# `None` means "not given here".


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


def kind(value: object) -> str:
    """What a decoded TOML or JSON value is, in the words of a TOML user."""
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
    given=kind,
)
converter = strict.converter(DIALECT, omit_defaults=True)

SECTIONS = ("simulation", "profiles", "fleets")


@frozen
class Parts:
    """What structured of a document: the fleets with their index in it, and the names
    of the profiles that did not structure (their mistakes are reported already)."""

    doc: FleetConfigDoc
    fleets: tuple[tuple[int, FleetDoc], ...]
    broken_profiles: frozenset[str]


def structure_document(document: object, report: Report) -> Parts:
    """The wire model of a decoded document, part by part, so that one broken fleet does
    not hide the mistakes of the others."""
    if not isinstance(document, dict):
        report.add("", f"expected a table at the top, got {kind(document)}")
        return Parts(FleetConfigDoc(fleets=()), (), frozenset())
    for key in document:
        if key not in SECTIONS:
            report.add(strict.join("", key), f"unknown key (known: {', '.join(SECTIONS)})")
    simulation = _structure(document.get("simulation", {}), SimulationDoc, "simulation", report)
    profiles, broken = _profiles(document.get("profiles", {}), report)
    fleets = _fleets(document.get("fleets"), report)
    doc = FleetConfigDoc(
        fleets=tuple(fleet for _, fleet in fleets),
        simulation=simulation or SimulationDoc(),
        profiles=profiles,
    )
    return Parts(doc, tuple(fleets), frozenset(broken))


def _profiles(raw_profiles: object, report: Report) -> tuple[dict[str, ProfileDoc], set[str]]:
    """The profiles that structured, and the names of those that did not."""
    profiles: dict[str, ProfileDoc] = {}
    broken: set[str] = set()
    if not isinstance(raw_profiles, dict):
        report.add("profiles", f"expected a table, got {kind(raw_profiles)}")
        return profiles, broken
    for name, raw in raw_profiles.items():
        if not isinstance(name, str):
            report.add("profiles", f"a profile name is text, got {name!r}")
            continue
        profile = _structure(raw, ProfileDoc, strict.join("profiles", name), report)
        if profile is None:
            broken.add(name)
        else:
            profiles[name] = profile
    return profiles, broken


def _fleets(raw_fleets: object, report: Report) -> list[tuple[int, FleetDoc]]:
    if raw_fleets is None:
        report.add("fleets", "is required: at least one [[fleets]] entry")
        return []
    if not isinstance(raw_fleets, list):
        report.add("fleets", f"expected a list of tables ([[fleets]]), got {kind(raw_fleets)}")
        return []
    if not raw_fleets:
        report.add("fleets", "needs at least one [[fleets]] entry")
    fleets: list[tuple[int, FleetDoc]] = []
    for index, raw in enumerate(raw_fleets):
        fleet = _structure(raw, FleetDoc, f"fleets[{index}]", report)
        if fleet is not None:
            fleets.append((index, fleet))
    return fleets


def _structure(value: object, cls: type[T], path: str, report: Report) -> T | None:
    try:
        return converter.structure(value, cls)
    except strict.STRUCTURE_ERRORS as exc:
        for problem in strict.problems(exc, DIALECT, path):
            report.add(*problem)
        return None


def unstructure(doc: Any) -> dict[str, Any]:
    """A wire model instance as the document it stands for (defaults left out)."""
    document: dict[str, Any] = converter.unstructure(doc)
    return document
