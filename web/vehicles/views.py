"""REST handlers for vehicles (every role) and fleets (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web
from cattrs.gen import make_dict_unstructure_fn, override

from actors.actor import VehicleActor
from db.repositories import VehicleFilter
from sovd import strict
from sovd.dids import IDENTIFICATION_DIDS
from sovd.errors import UnknownVehicle
from sovd.fleet import FleetSpec, LatencyRange, ecu_identity
from sovd.fleet_config import loads_fleet_config, parse_fleet_config
from sovd.records import CONNECTION_STATUSES, Vehicle, utc_now
from sovd.state import materialize_state
from sovd.uds import DtcStatus
from web.auth.guards import require_role
from web.bodies import JSON_BODY, json_response, read_json_object, read_text
from web.queries import MAX_OFFSET, QueryReader
from web.typedefs import actors_key, config_key, fleet_service_key, store_key
from web.vehicles.fleets import RunningFleet

MAX_PAGE = 1000
# POST /api/v1/fleets takes the fleet config as JSON, or as the TOML a file would hold.
TOML_CONTENT_TYPE = "application/toml"
TOTAL_COUNT_HEADER = "X-Total-Count"


_wire = strict.converter(JSON_BODY)
_wire.register_unstructure_hook(
    Vehicle, make_dict_unstructure_fn(Vehicle, _wire, fleet=override(omit=True))
)
_vehicle_document = _wire.get_unstructure_hook(Vehicle)


def vehicle_json(vehicle: Vehicle) -> dict[str, Any]:
    """A vehicle as listed: GET /api/v1/vehicles/{id} adds its fleet and ECUs."""
    document: dict[str, Any] = _vehicle_document(vehicle)
    return document


def ecus_json(actor: VehicleActor) -> list[dict[str, Any]]:
    identity = actor.identity
    ecus = []
    for profile in identity.profile.ecus:
        ecu = ecu_identity(identity, profile)
        data_ids = sorted(IDENTIFICATION_DIDS | set(profile.signal_dids))
        ecus.append(
            {
                "ecu_address": ecu.ecu_address,
                "name": ecu.name,
                "part_number": ecu.part_number,
                "serial_number": ecu.serial_number,
                "software_version": ecu.software_version,
                "hardware_number": ecu.hardware_number,
                "supplier": ecu.supplier,
                "system_name": profile.system_name,
                "manufacturing_date": ecu.manufacturing_date.isoformat(),
                "data_ids": [f"0x{did:04X}" for did in data_ids],
            }
        )
    return ecus


def health_json(actor: VehicleActor, now: datetime) -> dict[str, Any]:
    """What the vehicle's fault memory says: `ok`, `warning` (faults stored) or `fault`
    (one asks for the warning lamp); `unreachable` when it is disconnected. Before the
    first command the fault memory is the one the vehicle will start with."""
    state = actor.state or materialize_state(actor.identity, now)
    faulty = {ecu.ecu_address: len(ecu.dtcs) for ecu in state.ecus.values() if ecu.dtcs}
    lamp = any(
        status & DtcStatus.WARNING_INDICATOR_REQUESTED
        for ecu in state.ecus.values()
        for status in ecu.dtcs.values()
    )
    if actor.identity.connection_status == "disconnected":
        status = "unreachable"
    elif lamp:
        status = "fault"
    else:
        status = "warning" if faulty else "ok"
    return {
        "status": status,
        "stored_dtcs": sum(faulty.values()),
        "warning_lamp": lamp,
        "ecus_with_faults": sorted(faulty),
    }


def _vehicle_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["vehicle_id"])
    except ValueError:
        raise UnknownVehicle(UUID(int=0)) from None


async def _vehicle(request: web.Request) -> Vehicle:
    vehicle_id = _vehicle_id(request)
    vehicle = await request.app[store_key].vehicles.get(vehicle_id)
    if vehicle is None:
        raise UnknownVehicle(vehicle_id)
    return vehicle


def _actor(request: web.Request, vehicle_id: UUID) -> VehicleActor | None:
    actors = request.app[actors_key]
    return actors.get(vehicle_id) if vehicle_id in actors else None


async def list_vehicles(request: web.Request) -> web.Response:
    reader = QueryReader(request.query, ("status", "search", "fleet", "limit", "offset"))
    query = VehicleFilter(
        status=reader.choice("status", CONNECTION_STATUSES),
        search=reader.text("search", max_length=17),
        fleet=reader.text("fleet", max_length=63),
        limit=reader.integer("limit", 100, 1, MAX_PAGE),
        offset=reader.integer("offset", 0, 0, MAX_OFFSET),
    )
    reader.check()
    page = await request.app[store_key].vehicles.list(query)
    return json_response(
        [vehicle_json(v) for v in page.items], headers={TOTAL_COUNT_HEADER: str(page.total)}
    )


async def get_vehicle(request: web.Request) -> web.Response:
    vehicle = await _vehicle(request)
    actor = _actor(request, vehicle.vehicle_id)
    body = vehicle_json(vehicle)
    body["fleet"] = vehicle.fleet
    body["ecus"] = ecus_json(actor) if actor is not None else []
    return json_response(body)


async def get_vehicle_status(request: web.Request) -> web.Response:
    vehicle = await _vehicle(request)
    actor = _actor(request, vehicle.vehicle_id)
    last_seen_at = vehicle.last_seen_at
    body: dict[str, Any] = {"vehicle_id": str(vehicle.vehicle_id)}
    if actor is None:
        body |= {"connection_status": vehicle.connection_status, "health": None, "actor": None}
    else:
        contact = actor.last_contact_at
        if contact is not None and vehicle.connection_status != "disconnected":
            last_seen_at = max(contact, last_seen_at) if last_seen_at else contact
        body |= {
            "connection_status": actor.identity.connection_status,
            "health": health_json(actor, utc_now()),
            "actor": actor.status().as_dict(),
        }
    body["last_seen_at"] = last_seen_at
    return json_response(body)


def _latency_json(latency: LatencyRange | None) -> dict[str, Any] | None:
    if latency is None:
        return None
    body: dict[str, Any] = {
        "distribution": latency.distribution,
        "min_ms": latency.min_s * 1000,
        "max_ms": latency.max_s * 1000,
    }
    if latency.distribution == "normal":
        assert latency.center_s is not None and latency.spread is not None
        body |= {"mean_ms": latency.center_s * 1000, "stddev_ms": latency.spread * 1000}
    elif latency.distribution == "lognormal":
        assert latency.center_s is not None
        body |= {"median_ms": latency.center_s * 1000, "sigma": latency.spread}
    return body


def spec_json(spec: FleetSpec) -> dict[str, Any]:
    modes, reach = spec.effective_failure_modes, spec.effective_connectivity
    return {
        "name": spec.name,
        "count": spec.count,
        "profile": spec.profile.name,
        "make": spec.profile.make,
        "model": spec.profile.model,
        "seed": spec.seed,
        "vin_prefix": spec.vin_prefix,
        "latency": _latency_json(spec.latency),
        "failure_modes": {
            "negative_response": modes.negative_response,
            "response_pending": modes.response_pending,
            "timeout": modes.timeout,
            "connection_drop": modes.connection_drop,
        },
        "connectivity": {
            "intermittent": reach.intermittent,
            "disconnected": reach.disconnected,
            "intermittent_loss": reach.intermittent_loss,
            "when_disconnected": reach.when_disconnected,
        },
        "command_deadline_s": spec.command_deadline_s,
        "mailbox_size": spec.mailbox_size,
    }


def running_json(fleet: RunningFleet) -> dict[str, Any]:
    return spec_json(fleet.spec) | {
        "running": True,
        "vehicles_by_connection": fleet.connections,
        "recorded": fleet.recorded,
        "origin": fleet.origin,
        "spawned_at": fleet.spawned_at,
    }


@require_role("admin")
async def list_fleets(request: web.Request) -> web.Response:
    service = request.app[fleet_service_key]
    running = service.running()
    names = {fleet.spec.name for fleet in running}
    body = [running_json(fleet) for fleet in running]
    for record in await service.recorded():
        if record.name not in names:
            body.append(
                {
                    "name": record.name,
                    "count": record.vehicle_count,
                    "running": False,
                    "recorded": True,
                    "origin": "store",
                    "spawned_at": record.updated_at,
                    "note": "recorded for the next start of the server",
                }
            )
    return json_response(body)


@require_role("admin")
async def spawn_fleets(request: web.Request) -> web.Response:
    seed = request.app[config_key].simulation.seed
    if request.content_type == TOML_CONTENT_TYPE:
        text = await read_text(request)
        config = loads_fleet_config(text, source="request body", default_seed=seed)
    else:
        document = await read_json_object(request)
        config = parse_fleet_config(document, source="request body", default_seed=seed)
    outcomes = await request.app[fleet_service_key].spawn(config, "api")
    created = any(outcome.created for outcome in outcomes)
    body = {
        "fleets": [running_json(o.fleet) | {"created": o.created} for o in outcomes],
        "vehicles": sum(o.fleet.spec.count for o in outcomes if o.created),
    }
    return json_response(body, status=201 if created else 200)


@require_role("admin")
async def delete_fleet(request: web.Request) -> web.Response:
    await request.app[fleet_service_key].remove(request.match_info["name"])
    return web.Response(status=204)
