"""The `[simulation]` table of a fleet config, checked: what its fleets and profiles fall
back to when they do not say."""

from __future__ import annotations

from attrs import frozen

from sovd.fleet import LatencyRange
from sovd.fleet_config import checks
from sovd.fleet_config.report import Report
from sovd.fleet_config.wire import SimulationDoc
from sovd.profiles import Connectivity, FailureModes


@frozen
class Defaults:
    seed: int
    latency: LatencyRange | None
    failure_modes: FailureModes | None
    connectivity: Connectivity | None
    command_deadline_s: float | None
    mailbox_size: int | None


def simulation_defaults(doc: SimulationDoc, default_seed: int, report: Report) -> Defaults:
    """`default_seed` is the server's, for documents that name none."""
    path = "simulation"
    return Defaults(
        seed=doc.seed if doc.seed is not None else default_seed,
        latency=checks.latency(doc.latency, f"{path}.latency", report)
        if doc.latency is not None
        else None,
        failure_modes=(
            checks.failure_modes(doc.failure_modes, f"{path}.failure_modes", report)
            if doc.failure_modes is not None
            else None
        ),
        connectivity=(
            checks.connectivity(doc.connectivity, f"{path}.connectivity", report)
            if doc.connectivity is not None
            else None
        ),
        command_deadline_s=checks.command_deadline(
            doc.command_deadline_s, f"{path}.command_deadline_s", report
        ),
        mailbox_size=checks.mailbox_size(doc.mailbox_size, f"{path}.mailbox_size", report),
    )
