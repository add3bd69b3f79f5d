"""A vehicle seen as a SOVD entity tree: each ECU a component, grouped into functional areas.

Pure mapping from a profile; the same profile always gives the same ids, so a client can
keep them across restarts."""

from __future__ import annotations

import functools
import re

from attrs import frozen

from sovd.profiles import EcuProfile, VehicleProfile

AREAS = {
    "powertrain": "Powertrain",
    "chassis": "Chassis",
    "body": "Body and comfort",
    "network": "Network and infotainment",
}
# Which area an ECU belongs to, from words in its name; the first match wins.
_AREA_WORDS = (
    (
        "powertrain",
        (
            "powertrain",
            "engine",
            "motor",
            "transmission",
            "gearbox",
            "fuel",
            "battery",
            "hybrid",
            "inverter",
        ),
    ),
    (
        "chassis",
        (
            "brake",
            "abs",
            "esc",
            "steering",
            "suspension",
            "damping",
            "chassis",
            "parking",
            "tire",
        ),
    ),
    ("network", ("gateway", "telematic", "infotainment", "radio", "navigation", "connectivity")),
)
_NOT_ID = re.compile(r"[^a-z0-9]+")


@frozen
class Component:
    id: str
    name: str
    ecu: EcuProfile
    area: str

    @property
    def ecu_address(self) -> str:
        return self.ecu.ecu_address


@frozen
class Area:
    id: str
    name: str
    component_ids: tuple[str, ...]


@frozen
class VehicleEntities:
    components: tuple[Component, ...]
    areas: tuple[Area, ...]

    def component(self, ident: str) -> Component | None:
        """By id, case-insensitively, or by the ECU's address (`0x01`)."""
        wanted = ident.lower()
        for component in self.components:
            if component.id == wanted or component.ecu_address.lower() == wanted:
                return component
        return None

    def area(self, ident: str) -> Area | None:
        wanted = ident.lower()
        return next((area for area in self.areas if area.id == wanted), None)


def area_of(ecu: EcuProfile) -> str:
    words = set(_NOT_ID.split(f"{ecu.name} {ecu.system_name}".lower()))
    for area, keys in _AREA_WORDS:
        if words.intersection(keys):
            return area
    return "body"


def component_id(name: str) -> str:
    """`Brake Electronics (ABS/ESC)` -> `brake-electronics-abs-esc`."""
    return _NOT_ID.sub("-", name.lower()).strip("-") or "ecu"


@functools.cache
def entities_of(profile: VehicleProfile) -> VehicleEntities:
    components: list[Component] = []
    taken: set[str] = set()
    for ecu in profile.ecus:
        ident = component_id(ecu.name)
        if ident in taken:
            ident = f"{ident}-{ecu.address:02x}"
        taken.add(ident)
        components.append(Component(ident, ecu.name, ecu, area_of(ecu)))
    areas = tuple(
        Area(area, name, tuple(c.id for c in components if c.area == area))
        for area, name in AREAS.items()
        if any(c.area == area for c in components)
    )
    return VehicleEntities(tuple(components), areas)
