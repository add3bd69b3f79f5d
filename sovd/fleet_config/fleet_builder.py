"""The `[[fleets]]` entries of a fleet config turned into FleetSpecs: a count of one
profile, with the settings the fleet overrides."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

from sovd.fleet import MAX_FLEET_SIZE, FleetSpec, LatencyRange
from sovd.fleet_config import checks
from sovd.fleet_config.defaults import Defaults
from sovd.fleet_config.profile_builder import (
    BUILTIN_PROFILES,
    BuiltProfile,
    ProfileBuilder,
    unknown_profile,
)
from sovd.fleet_config.report import Report
from sovd.fleet_config.wire import FleetConfigDoc, FleetDoc, ProfileDoc, unstructure
from sovd.profiles import Connectivity, FailureModes


@frozen
class Overrides:
    """What a fleet sets for itself, or else what `[simulation]` sets (None: neither)."""

    latency: LatencyRange | None
    failure_modes: FailureModes | None
    connectivity: Connectivity | None
    command_deadline_s: float | None
    mailbox_size: int | None


class FleetBuilder:
    def __init__(self, sim: Defaults, profiles: ProfileBuilder, report: Report) -> None:
        self._sim = sim
        self._profiles = profiles
        self._report = report

    def build(self, doc: FleetDoc, path: str) -> FleetSpec | None:
        """The fleet `doc` describes; None if it has mistakes (reported)."""
        checkpoint = self._report.checkpoint()
        self._check_name_and_count(doc, path)
        built = self._profile(doc, path)
        vin_prefix = self._vin_prefix(doc, path)
        overrides = self._overrides(doc, built, path)
        if built is None or self._report.found_since(checkpoint):
            return None
        seed = doc.seed if doc.seed is not None else self._sim.seed
        return self._report.build(
            path,
            lambda: FleetSpec(
                name=doc.name,
                profile=built.profile,
                count=doc.count,
                seed=seed,
                vin_prefix=vin_prefix,
                latency=overrides.latency,
                failure_modes=overrides.failure_modes,
                connectivity=overrides.connectivity,
                command_deadline_s=overrides.command_deadline_s,
                mailbox_size=overrides.mailbox_size,
            ),
        )

    def _check_name_and_count(self, doc: FleetDoc, path: str) -> None:
        if not checks.NAME.fullmatch(doc.name):
            self._report.add(f"{path}.name", "a fleet name is 1-63 letters, digits, '_', '.', '-'")
        if doc.count < 0:
            self._report.add(f"{path}.count", f"must be >= 0, got {doc.count}")
        elif doc.count > MAX_FLEET_SIZE:
            self._report.add(f"{path}.count", f"must be <= {MAX_FLEET_SIZE:,}, got {doc.count:,}")

    def _profile(self, doc: FleetDoc, path: str) -> BuiltProfile | None:
        built = self._profiles.get(doc.profile)
        known = self._profiles.known()
        if built is None and doc.profile not in known:
            self._report.add(f"{path}.profile", unknown_profile(doc.profile, known))
        return built

    def _vin_prefix(self, doc: FleetDoc, path: str) -> str | None:
        """The fleet's VIN head: `vin_prefix` (3-8 characters) or `wmi` (3), if either."""
        if doc.vin_prefix is not None and doc.wmi is not None:
            self._report.add(path, "give vin_prefix or wmi, not both")
        elif doc.wmi is not None:
            if not checks.vin_text(doc.wmi, 3):
                self._report.add(f"{path}.wmi", f"must be 3 {checks.VIN_CHARACTERS}")
            return doc.wmi
        elif doc.vin_prefix is not None and not (
            3 <= len(doc.vin_prefix) <= 8 and checks.VIN_TEXT.fullmatch(doc.vin_prefix)
        ):
            self._report.add(
                f"{path}.vin_prefix",
                f"must be 3-8 {checks.VIN_CHARACTERS}, got {doc.vin_prefix!r}",
            )
        return doc.vin_prefix

    def _overrides(self, doc: FleetDoc, built: BuiltProfile | None, path: str) -> Overrides:
        sim, report = self._sim, self._report
        # A profile of the document already holds the [simulation] failure modes and
        # connectivity it did not set; a built-in one gets them here.
        builtin = built is not None and built.profile.name in BUILTIN_PROFILES
        latency = sim.latency
        if doc.latency is not None:
            latency = checks.latency(doc.latency, f"{path}.latency", report)
        failure_modes = sim.failure_modes if builtin else None
        if doc.failure_modes is not None:
            failure_modes = checks.failure_modes(doc.failure_modes, f"{path}.failure_modes", report)
        connectivity = sim.connectivity if builtin else None
        if doc.connectivity is not None:
            connectivity = checks.connectivity(doc.connectivity, f"{path}.connectivity", report)
        deadline = checks.command_deadline(
            doc.command_deadline_s, f"{path}.command_deadline_s", report
        )
        mailbox_size = checks.mailbox_size(doc.mailbox_size, f"{path}.mailbox_size", report)
        return Overrides(
            latency=latency,
            failure_modes=failure_modes,
            connectivity=connectivity,
            command_deadline_s=deadline if deadline is not None else sim.command_deadline_s,
            mailbox_size=mailbox_size if mailbox_size is not None else sim.mailbox_size,
        )


def definition(doc: FleetConfigDoc, fleet: FleetDoc, seed: int) -> dict[str, Any]:
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
    return unstructure(alone)
