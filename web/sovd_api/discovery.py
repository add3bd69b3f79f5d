"""Discovery: version-info, the vehicle's root, and its entities (components are its ECUs,
areas its functional groups; apps and functions answer, empty)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.actor import VehicleActor
from sovd.entities import Area, Component
from sovd.fleet import ecu_identity
from web.sovd_api import schemas
from web.sovd_api.common import (
    SOVD_VERSION,
    base_uri,
    check_query,
    component_of,
    component_uri,
    entities,
    respond,
    vehicle_of,
)
from web.sovd_api.errors import entity_not_found

VENDOR = {"name": "sovd-sim", "version": "0.1.0"}


def _reference(ident: str, name: str, href: str) -> dict[str, str]:
    return {"id": ident, "name": name, "href": href}


def component_reference(
    request: web.Request, vehicle: VehicleActor, component: Component
) -> dict[str, str]:
    return _reference(component.id, component.name, component_uri(request, vehicle, component))


def area_reference(request: web.Request, vehicle: VehicleActor, area: Area) -> dict[str, str]:
    return _reference(area.id, area.name, f"{base_uri(request, vehicle)}/areas/{area.id}")


def ecu_state(vehicle: VehicleActor) -> str:
    """CDA's ECU states, as far as a simulated link tells them apart."""
    return "Offline" if vehicle.identity.connection_status == "disconnected" else "Online"


def _collection(request: web.Request, items: list[dict[str, str]]) -> web.Response:
    return respond(request, {"items": items}, schemas.ENTITY_COLLECTION)


async def version_info(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    body = {
        "sovd_info": [
            {"version": SOVD_VERSION, "base_uri": base_uri(request, vehicle), "vendor_info": VENDOR}
        ]
    }
    return respond(request, body, schemas.VERSION_INFO)


async def root(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    identity = vehicle.identity
    base = base_uri(request, vehicle)
    profile = identity.profile
    body: dict[str, Any] = {
        "id": str(vehicle.vehicle_id),
        "name": f"{profile.make} {profile.model} {identity.vin}",
        "components": f"{base}/components",
        "areas": f"{base}/areas",
        "apps": f"{base}/apps",
        "functions": f"{base}/functions",
        "locks": f"{base}/locks",
        "x-sovdsim-vehicle": {
            "vin": identity.vin,
            "make": profile.make,
            "model": profile.model,
            "year": identity.year,
            "fleet": identity.fleet.name,
            "connection_status": identity.connection_status,
        },
    }
    return respond(request, body, schemas.ROOT)


async def list_components(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    return _collection(
        request, [component_reference(request, vehicle, c) for c in entities(vehicle).components]
    )


async def get_component(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    ecu = ecu_identity(vehicle.identity, component.ecu)
    here = component_uri(request, vehicle, component)
    body = {
        "id": component.id,
        "name": component.name,
        "variant": {
            "name": component.ecu.system_name,
            "logical_address": component.ecu_address,
            "state": ecu_state(vehicle),
            "part_number": ecu.part_number,
            "software_version": ecu.software_version,
            "hardware_number": ecu.hardware_number,
            "supplier": ecu.supplier,
        },
        **{
            link: f"{here}/{link}"
            for link in (
                "data",
                "data-categories",
                "data-groups",
                "faults",
                "operations",
                "configurations",
                "modes",
                "locks",
                "cyclic-subscriptions",
                "subcomponents",
                "hosts",
                "belongs-to",
            )
        },
    }
    return respond(request, body, schemas.COMPONENT)


async def component_belongs_to(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    tree = entities(vehicle)
    return _collection(
        request,
        [
            area_reference(request, vehicle, area)
            for area in tree.areas
            if component.id in area.component_ids
        ],
    )


async def empty_relation(request: web.Request) -> web.Response:
    """`subcomponents` and `hosts` of a component: ECUs have neither."""
    check_query(request)
    component_of(request)
    return _collection(request, [])


async def list_areas(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    return _collection(
        request, [area_reference(request, vehicle, a) for a in entities(vehicle).areas]
    )


def _area(request: web.Request, vehicle: VehicleActor) -> Area:
    ident = request.match_info["area_id"]
    area = entities(vehicle).area(ident)
    if area is None:
        raise entity_not_found(f"area {ident!r}")
    return area


async def get_area(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    area = _area(request, vehicle)
    here = f"{base_uri(request, vehicle)}/areas/{area.id}"
    body = {
        "id": area.id,
        "name": area.name,
        "contains": f"{here}/contains",
        "related-components": f"{here}/related-components",
        "subareas": f"{here}/subareas",
    }
    return respond(request, body, schemas.AREA)


async def area_contains(request: web.Request) -> web.Response:
    """`contains` and `related-components`: the area's components."""
    check_query(request)
    vehicle = vehicle_of(request)
    area = _area(request, vehicle)
    tree = entities(vehicle)
    return _collection(
        request,
        [
            component_reference(request, vehicle, component)
            for component in tree.components
            if component.id in area.component_ids
        ],
    )


async def area_subareas(request: web.Request) -> web.Response:
    check_query(request)
    _area(request, vehicle_of(request))
    return _collection(request, [])


async def list_empty_collection(request: web.Request) -> web.Response:
    """`apps` and `functions`: a simulated vehicle has no software apps or functions of its
    own, and says so."""
    check_query(request)
    vehicle_of(request)
    return _collection(request, [])
