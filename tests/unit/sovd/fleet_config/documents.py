"""Fleet config documents and helpers shared by the tests of sovd/fleet_config."""

from __future__ import annotations

from typing import Any

import pytest

from sovd.fleet_config import FleetConfig, InvalidFleetConfig, loads_fleet_config

EV = """
[simulation]
seed = 11
failure_modes = { timeout = 0.02 }

[profiles.ev]
make = "Volkswagen"
model = "ID.4"
years = [2021, 2024]
wmi = "WVG"
vds = "ZZZE2"
plant_code = "P"

[[profiles.ev.ecus]]
address = "0x01"
name = "Vehicle Control Unit"
part_number = "1EA907115A"
software_version = "0412"
live_dids = ["0xF40D", "0xF442"]

[[profiles.ev.ecus]]
address = 0x8C
name = "Battery Energy Control Module"
part_number = "1EA915184"
software_version = "0721"
supplier = "LG Energy Solution"

[[profiles.ev.dtcs]]
ecu = "0x8C"
code = "P0A80"
probability = 0.5
status = "0xAF"
reappear_per_hour = 0.5

[[profiles.ev.dids]]
did = "0xF442"
initial = [12.4, 12.8]
range = [11.0, 14.8]
volatility = 0.01

[[profiles.ev.dids]]
did = "0xF4A6"
value = 1234.5

[[fleets]]
name = "evs"
count = 50
profile = "ev"
vin_prefix = "WVGZZZE2"

[[fleets]]
name = "golfs"
count = 20
profile = "vw-golf"
seed = 3
latency = { min_ms = 100, max_ms = 300 }
"""

FLEET = '[[fleets]]\nname = "a"\ncount = 3\nprofile = "vw-golf"\n'

PROFILE = """
[profiles.p]
make = "Make"
model = "Model"
years = [2020, 2022]
wmi = "ABC"
[[profiles.p.ecus]]
address = "0x10"
name = "ECM"
part_number = "1"
software_version = "1"
"""

USES_P = '[[fleets]]\nname = "a"\ncount = 3\nprofile = "p"\n'


def parse(text: str, **options: Any) -> FleetConfig:
    return loads_fleet_config(text, source="fleet.toml", **options)


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidFleetConfig) as caught:
        parse(text)
    return caught.value.lines()
