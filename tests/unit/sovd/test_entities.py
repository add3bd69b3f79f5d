from __future__ import annotations

import attrs
import pytest

from sovd.demo import CHEVROLET_MALIBU, DEMO_PROFILES, FORD_F150, VW_GOLF
from sovd.entities import area_of, component_id, entities_of
from sovd.profiles import VehicleProfile


@pytest.mark.parametrize("profile", DEMO_PROFILES, ids=lambda p: p.name)
def test_every_ecu_is_one_component_in_exactly_one_area(profile: VehicleProfile) -> None:
    tree = entities_of(profile)

    assert [c.ecu for c in tree.components] == list(profile.ecus)
    assert len({c.id for c in tree.components}) == len(profile.ecus)
    in_areas = [ident for area in tree.areas for ident in area.component_ids]
    assert sorted(in_areas) == sorted(c.id for c in tree.components)
    assert all(area.component_ids for area in tree.areas)
    areas = {area.id: area for area in tree.areas}
    for component in tree.components:
        assert component.id in areas[component.area].component_ids


@pytest.mark.parametrize(
    ("profile", "name", "area"),
    [
        (VW_GOLF, "Engine Control Module", "powertrain"),
        (FORD_F150, "Powertrain Control Module", "powertrain"),
        (FORD_F150, "Continuously Controlled Damping Module", "chassis"),
        (FORD_F150, "Anti-Lock Brake System Module", "chassis"),
        (CHEVROLET_MALIBU, "Sensing and Diagnostic Module", "body"),
        (VW_GOLF, "Data Bus Gateway", "network"),
    ],
)
def test_ecus_fall_into_the_area_their_name_says(
    profile: VehicleProfile, name: str, area: str
) -> None:
    ecu = next(e for e in profile.ecus if e.name == name)
    assert area_of(ecu) == area


def test_components_are_found_by_id_in_any_case_or_by_ecu_address() -> None:
    tree = entities_of(VW_GOLF)

    engine = tree.component("Engine-Control-Module")

    assert engine is not None and engine.ecu.address == 0x01
    assert tree.component("0x01") == engine
    assert tree.component("0X01") == engine
    assert tree.component("engine") is None
    assert tree.area("PowerTrain") is not None
    assert tree.area("cockpit") is None


def test_ids_are_slugs_and_two_ecus_of_one_name_stay_apart() -> None:
    assert component_id("Brake Electronics (ABS/ESC)") == "brake-electronics-abs-esc"
    assert component_id("(!)") == "ecu"
    twin = attrs.evolve(VW_GOLF.ecus[0], address=0x41)
    profile = attrs.evolve(VW_GOLF, name="twin-golf", ecus=(*VW_GOLF.ecus, twin))

    ids = [c.id for c in entities_of(profile).components]

    assert ids[0] == "engine-control-module"
    assert ids[-1] == "engine-control-module-41"
