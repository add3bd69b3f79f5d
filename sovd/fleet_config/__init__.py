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

`wire` is the document's model and converter, `checks` the checks of its values,
`defaults`, `profile_builder` and `fleet_builder` its sections, `parser` the whole.
"""

from sovd.fleet_config.parser import (
    FleetConfig,
    FleetPlan,
    loads_fleet_config,
    parse_fleet_config,
)
from sovd.fleet_config.report import ConfigProblem, InvalidFleetConfig

__all__ = [
    "ConfigProblem",
    "FleetConfig",
    "FleetPlan",
    "InvalidFleetConfig",
    "loads_fleet_config",
    "parse_fleet_config",
]
