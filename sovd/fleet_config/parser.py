"""Parsing a whole fleet config: the document structured, then `[simulation]`, the
profiles and the fleets checked in turn, every problem gathered, all or nothing."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from attrs import field, frozen

from sovd.fleet import FleetSpec, first_shared_vin
from sovd.fleet_config.defaults import simulation_defaults
from sovd.fleet_config.fleet_builder import FleetBuilder, definition
from sovd.fleet_config.profile_builder import ProfileBuilder
from sovd.fleet_config.report import ConfigProblem, InvalidFleetConfig, Report
from sovd.fleet_config.wire import Parts, structure_document

_TOML_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


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


def parse_fleet_config(
    document: object, *, source: str = "<fleet config>", default_seed: int = 0
) -> FleetConfig:
    """A decoded document (TOML or JSON) -> the fleets it describes, all or nothing.

    `default_seed` is the seed of fleets for which neither the fleet nor `[simulation]`
    names one. Raises InvalidFleetConfig with every problem found.
    """
    report = Report()
    parts = structure_document(document, report)
    plans = _plans(parts, default_seed, report)
    if not report.problems:
        _check_shared_vins(plans, report)
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


def _plans(parts: Parts, default_seed: int, report: Report) -> list[FleetPlan]:
    doc = parts.doc
    sim = simulation_defaults(doc.simulation, default_seed, report)
    profiles = ProfileBuilder(doc.profiles, parts.broken_profiles, sim, report)
    profiles.build_all()
    fleets = FleetBuilder(sim, profiles, report)
    plans: list[FleetPlan] = []
    seen: dict[str, int] = {}
    for index, fleet_doc in parts.fleets:
        path = f"fleets[{index}]"
        if fleet_doc.name in seen:
            report.add(f"{path}.name", f"{fleet_doc.name!r} is also fleets[{seen[fleet_doc.name]}]")
            continue
        seen[fleet_doc.name] = index
        spec = fleets.build(fleet_doc, path)
        if spec is not None:
            plans.append(FleetPlan(spec, definition(doc, fleet_doc, spec.seed)))
    return plans


def _check_shared_vins(plans: list[FleetPlan], report: Report) -> None:
    """Two fleets must not be able to make the same VIN."""
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
