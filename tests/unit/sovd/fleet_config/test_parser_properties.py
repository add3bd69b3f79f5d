"""sovd/fleet_config/parser.py, for any document: it parses, or it names its mistakes."""

from __future__ import annotations

import copy
import math
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sovd.fleet_config import FleetConfig, InvalidFleetConfig, parse_fleet_config
from sovd.fleet_config.wire import (
    ConnectivityDoc,
    DidDoc,
    DtcDoc,
    EcuDoc,
    FailureModesDoc,
    FleetDoc,
    Hex,
    LatencyDoc,
    ProfileDoc,
    SimulationDoc,
)

TOML_SCALARS = (
    st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.datetimes()
    | st.dates()
    | st.times()
)
TOML_VALUES = (
    TOML_SCALARS
    | st.lists(TOML_SCALARS, max_size=2)
    | st.dictionaries(st.text(max_size=4), TOML_SCALARS, max_size=2)
)

PROBABILITY = (
    *("negative_response", "response_pending", "timeout", "connection_drop"),
    *("intermittent", "disconnected", "intermittent_loss", "probability"),
)

# Values a document without mistakes may hold, by key, then by type.
VALID_BY_KEY: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.integers(),
    "count": st.integers(0, 30),
    "years": st.sampled_from([[2020, 2022], [2015, 2015], [2010, 2039]]),
    "wmi": st.sampled_from(["WVW", "WVG", "1FT"]),
    "vds": st.sampled_from(["ZZZE2", "ZZZZZ"]),
    "plant_code": st.sampled_from(["A", "P"]),
    "vin_prefix": st.sampled_from(["WVWZZZ", "1FTEW1", "3GN"]),
    "code": st.sampled_from(["P0420", "P0A80", "P0101"]),
    "address": st.sampled_from(["0x10", 0x10]),
    "ecu": st.sampled_from(["0x10", 0x10]),
    "did": st.sampled_from(["0xF40D", "0xF442", 0xF4A6]),
    "live_dids": st.lists(st.sampled_from(["0xF40D", "0xF442", 0xF405]), unique=True),
    "security_levels": st.lists(st.sampled_from(["0x01", "0x03", 0x11]), min_size=1, unique=True),
    "status": st.sampled_from(["0x2F", "0xAF", 8]),
    "latency": st.sampled_from(
        [
            {"min_ms": 10, "max_ms": 20},
            {"min_ms": 0, "max_ms": 0, "distribution": "normal"},
            {"min_ms": 20, "max_ms": 800, "distribution": "normal", "mean_ms": 120},
            {"min_ms": 10, "max_ms": 5000, "distribution": "lognormal", "sigma": 0.8},
        ]
    ),
    "value": st.sampled_from([0, 12.5, 50]),
    "initial": st.sampled_from([[10, 12]]),
    "range": st.sampled_from([[0, 15], [5, 50.5]]),
    **dict.fromkeys(PROBABILITY, st.sampled_from([0.0, 0.01, 0.1, 0.3])),
}
VALID_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(1, 30),
    float: st.sampled_from([0.5, 1, 2.0, 30.0]),
    str: st.sampled_from(["a", "b", "c", "ECM", "A-1"]),
}
# Values just past what is valid.
EDGE_BY_KEY: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["has space", "", "x" * 64]),
    "profile": st.sampled_from(["no such", "p", ""]),
    "extends": st.sampled_from(["no such", "p", "q", "vw-golf"]),
    "count": st.sampled_from([-1, 1_000_001]),
    "years": st.sampled_from([[2022, 2020], [2005, 2008], [2020]]),
    "wmi": st.sampled_from(["AIO", "WV", ""]),
    "vin_prefix": st.sampled_from(["WVWQ", "AB", "ABCDEFGHJ"]),
    "code": st.sampled_from(["P0999", "p420", ""]),
    "address": st.sampled_from(["0x1G", 300, -1, "10"]),
    "ecu": st.sampled_from(["0x11", "0x1G"]),
    "did": st.sampled_from(["0xF190", "0x1234", "F40D"]),
    "status": st.sampled_from([0, "0x00", 256]),
    "security_levels": st.lists(st.sampled_from(["0x02", 0x7F, "0x1G"]), max_size=2),
    "distribution": st.sampled_from(["normal", "lognormal"]),
    "value": st.sampled_from([-1, 1e9]),
    "range": st.sampled_from([[50, 5], [0, 900]]),
    "initial": st.sampled_from([[90, 10], [-5, 5]]),
    **dict.fromkeys(PROBABILITY, st.sampled_from([-0.1, 0.6, 1.5])),
}
EDGE_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    int: st.sampled_from([0, -1]),
    float: st.sampled_from([0, -1.0, 1e300, math.nan, math.inf, 10**400]),
    str: st.sampled_from(["", "has space"]),
    Hex: st.sampled_from(["0x", 0x10000]),
}
# The keys a profile needs unless it extends another.
PROFILE_KEYS = {"make", "model", "years", "wmi", "ecus"}


class Shapes:
    """Strategies for the tables of the wire model: with `edges`, values just past what is
    valid turn up; with `sloppy`, any TOML value in place of any other."""

    def __init__(self, *, edges: bool, sloppy: bool) -> None:
        self.edges = edges
        self.sloppy = sloppy

    def value(self, key: str, tp: Any) -> st.SearchStrategy[Any]:
        if key == "ecus":  # one ECU, at the address the DTCs name
            valid = st.lists(self.table(EcuDoc), min_size=1, max_size=1)
        else:
            valid = VALID_BY_KEY[key] if key in VALID_BY_KEY else self.valid(tp)
        choices = [valid, valid, valid]
        if self.edges:
            edge = EDGE_BY_KEY[key] if key in EDGE_BY_KEY else EDGE_BY_TYPE.get(tp, valid)
            choices.append(edge)
        if self.sloppy:
            choices.append(TOML_VALUES)
        return st.one_of(choices)

    def valid(self, tp: Any) -> st.SearchStrategy[Any]:
        origin, args = get_origin(tp), get_args(tp)
        if tp in VALID_BY_TYPE:
            return VALID_BY_TYPE[tp]
        if origin in (Union, types.UnionType):
            return st.one_of([self.valid(arg) for arg in args if arg is not type(None)])
        if origin is Literal:
            return st.sampled_from(args)
        if origin is tuple and args[1:] == (Ellipsis,):
            # Without edges, one entry at most: two could name the same DID.
            return st.lists(self.value("", args[0]), max_size=2 if self.edges else 1)
        if attrs.has(tp):
            return self.table(tp)
        raise TypeError(f"no strategy for {tp!r}")

    def table(self, cls: type) -> st.SearchStrategy[dict[str, Any]]:
        """A table of `cls`'s keys: the required ones, some of the others."""
        hints = get_type_hints(cls)
        keys = {a.name: self.value(a.name, hints[a.name]) for a in attrs.fields(cls)}
        required = {a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING}
        required |= PROFILE_KEYS if cls is ProfileDoc else set()
        optional = set(keys) - required - self._left_out(cls)
        table = st.fixed_dictionaries(
            {key: keys[key] for key in required}, optional={key: keys[key] for key in optional}
        )
        return st.one_of(table, st.fixed_dictionaries({}, optional=keys)) if self.edges else table

    def _left_out(self, cls: type) -> set[str]:
        """Keys that can only be valid together with others, left out of valid tables."""
        if self.edges:
            return set()
        return {
            ProfileDoc: {"extends"},
            FleetDoc: {"wmi", "vin_prefix"},
            DidDoc: {"initial", "range"},
            DtcDoc: set(),
            LatencyDoc: {"mean_ms", "stddev_ms", "median_ms", "sigma", "distribution"},
            FailureModesDoc: {"timeout", "connection_drop"},
            ConnectivityDoc: {"intermittent_loss"},
            SimulationDoc: set(),
        }.get(cls, set())


@st.composite
def documents(draw: st.DrawFn) -> tuple[bool, object]:
    """Documents shaped like fleet configs, and whether they were made of valid values only."""
    shapes = Shapes(edges=draw(st.booleans()), sloppy=draw(st.booleans()))
    valid = not (shapes.edges or shapes.sloppy)
    if shapes.sloppy and draw(st.integers(0, 9)) == 0:
        return False, draw(TOML_VALUES)
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["simulation"] = draw(shapes.table(SimulationDoc))
    names = draw(st.lists(st.sampled_from(["p", "q", "r"]), unique=True, max_size=2))
    if names:
        document["profiles"] = {name: draw(shapes.table(ProfileDoc)) for name in names}
    fleets = draw(st.lists(shapes.table(FleetDoc), min_size=1, max_size=2))
    for number, fleet in enumerate(fleets):
        if valid:
            fleet["name"] = f"fleet-{number}"
            fleet["profile"] = draw(st.sampled_from([*names, "vw-golf", "ford-f150"]))
    if valid or draw(st.integers(0, 9)) > 0:
        document["fleets"] = fleets
    if shapes.sloppy and draw(st.integers(0, 9)) == 0:
        document[draw(st.text(max_size=6))] = draw(TOML_VALUES)
    return valid, document


def parsed_or_error(document: object) -> FleetConfig | InvalidFleetConfig:
    try:
        return parse_fleet_config(document, source="any.toml")
    except InvalidFleetConfig as exc:
        return exc


def has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(has_nan(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_nan(item) for item in value)
    return False


@settings(max_examples=150, deadline=None, database=None)
@given(documents())
def test_any_document_parses_or_names_its_mistakes(case: tuple[bool, object]) -> None:
    valid, document = case

    outcome = parsed_or_error(copy.deepcopy(document))

    event("parsed" if isinstance(outcome, FleetConfig) else "invalid")
    if isinstance(outcome, InvalidFleetConfig):
        assert not valid, outcome.lines()
        assert outcome.problems
        assert all(line.startswith("any.toml: ") for line in outcome.lines())
        return
    for plan in outcome.plans:
        rebuilt = parse_fleet_config(copy.deepcopy(plan.definition), default_seed=12345)
        if not has_nan(plan.definition):
            assert rebuilt.fleets == (plan.spec,)
