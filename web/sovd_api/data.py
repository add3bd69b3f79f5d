"""Data of a component: its data identifiers as SOVD data resources (ReadDataByID,
WriteDataByID), their categories and groups, and the writable ones as configurations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.actor import VehicleActor
from sovd.dids import DID_CATALOG, DIDS_BY_KEY, IDENTIFICATION_DIDS, DidInfo, ScaledCodec
from sovd.entities import Component
from web.auth.guards import require_role
from web.sovd_api import schemas
from web.sovd_api.common import (
    check_query,
    component_of,
    component_uri,
    read_body,
    respond,
    run_command,
    vehicle_of,
)
from web.sovd_api.errors import invalid_request, resource_not_found, vendor_error
from web.sovd_api.locking import ensure_unlocked
from web.sovd_api.schemas import LINK, STRING, items_of, obj

CATEGORY_ORDER = ("identData", "currentData", "storedData", "sysInfo")
VALUE: schemas.Schema = {"type": ["string", "number"]}

DATA_ITEM = obj(
    {
        "id": STRING,
        "name": STRING,
        "category": {"enum": list(CATEGORY_ORDER)},
        "groups": {"type": "array", "items": STRING},
        "href": LINK,
        "x-sovdsim-did": STRING,
    },
    ("id", "name", "category"),
)
DATA_LIST = items_of(DATA_ITEM)
CATEGORY_LIST = items_of(obj({"item": STRING}, ("item",)))
GROUP_LIST = items_of(obj({"id": STRING, "category": STRING, "group": STRING}, ("id", "category")))
CONFIGURATION_LIST = items_of(
    obj(
        {"id": STRING, "name": STRING, "type": {"enum": ["parameter"]}, "href": LINK},
        ("id", "name", "type"),
    )
)


def is_numeric(info: DidInfo) -> bool:
    """Scaled values are numbers; text, dates and session names are strings."""
    return isinstance(info.codec, ScaledCodec)


def read_value_schema(info: DidInfo | None = None) -> schemas.Schema:
    """What a GET of the data resource answers; without `info`, of any of them."""
    data: schemas.Schema = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": VALUE,
    }
    if info is not None:
        value: schemas.Schema = {"type": "number" if is_numeric(info) else "string"}
        if info.unit:
            value["x-sovd-unit"] = {"display_name": info.unit}
        data = obj({info.key: value}, (info.key,))
    return obj(
        {
            "id": STRING,
            "data": data,
            "x-sovdsim": obj(
                {
                    "did": STRING,
                    "unit": {"type": ["string", "null"]},
                    "raw": STRING,
                    "uds_response": STRING,
                },
                ("did", "unit", "raw", "uds_response"),
            ),
        },
        ("id", "data"),
    )


DATA_VALUE = read_value_schema()
# PUT body: `{"data": {"<id>": value}}`, or `{"data": value}` for short.
DATA_WRITE = obj(
    {
        "data": {
            "anyOf": [
                VALUE,
                {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": VALUE,
                },
            ]
        }
    },
    ("data",),
)


def supported(component: Component) -> list[DidInfo]:
    """The component's data identifiers, in catalog order."""
    dids = IDENTIFICATION_DIDS | set(component.ecu.signal_dids)
    return [info for did, info in DID_CATALOG.items() if did in dids]


def _writable(component: Component) -> list[DidInfo]:
    return [info for info in supported(component) if info.write is not None]


def find_data(component: Component, ident: str) -> DidInfo:
    """A data identifier by its key (`vin`) or its number (`F190`, `0xF190`)."""
    wanted = ident.lower()
    info = DIDS_BY_KEY.get(wanted)
    if info is None:
        digits = wanted.removeprefix("0x")
        if len(digits) == 4:
            try:
                info = DID_CATALOG.get(int(digits, 16))
            except ValueError:
                info = None
    if info is None or info not in supported(component):
        raise resource_not_found(f"data resource {ident!r} on this component")
    return info


def _categories(request: web.Request) -> set[str] | None:
    wanted = {
        part
        for name in ("category", "categories")
        for value in request.query.getall(name, ())
        for part in value.split(",")
        if part
    }
    unknown = wanted - set(CATEGORY_ORDER)
    if unknown:
        raise invalid_request("category", f"unknown category {sorted(unknown)[0]!r}")
    return wanted or None


def _groups(request: web.Request) -> set[str] | None:
    wanted = {part for value in request.query.getall("groups", ()) for part in value.split(",")}
    return {g for g in wanted if g} or None


async def list_data(request: web.Request) -> web.Response:
    check_query(request, ("category", "categories", "groups"))
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    categories, groups = _categories(request), _groups(request)
    here = f"{component_uri(request, vehicle, component)}/data"
    items = []
    for info in supported(component):
        if categories is not None and info.category not in categories:
            continue
        if groups is not None and info.group not in groups:
            continue
        item: dict[str, Any] = {"id": info.key, "name": info.description, "category": info.category}
        if info.group is not None:
            item["groups"] = [info.group]
        item["href"] = f"{here}/{info.key}"
        item["x-sovdsim-did"] = info.data_id[2:]
        items.append(item)
    return respond(request, {"items": items}, DATA_LIST)


async def list_categories(request: web.Request) -> web.Response:
    check_query(request)
    component = component_of(request)
    present = {info.category for info in supported(component)}
    items = [{"item": category} for category in CATEGORY_ORDER if category in present]
    return respond(request, {"items": items}, CATEGORY_LIST)


async def list_groups(request: web.Request) -> web.Response:
    check_query(request, ("category", "categories"))
    component = component_of(request)
    categories = _categories(request)
    seen: dict[str, str] = {}
    for info in supported(component):
        if info.group is not None and (categories is None or info.category in categories):
            seen.setdefault(info.group, info.category)
    items = [
        {"id": group, "category": category, "group": group.title()}
        for group, category in seen.items()
    ]
    return respond(request, {"items": items}, GROUP_LIST)


async def read_data(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    info = find_data(component, request.match_info["data_id"])
    body = await read_value(request, vehicle, component, info)
    return respond(request, body, read_value_schema(info))


async def read_value(
    request: web.Request, vehicle: VehicleActor, component: Component, info: DidInfo
) -> dict[str, Any]:
    """The data resource's current value (ReadDataByID), as its GET answers it."""
    outcome = await run_command(
        request,
        vehicle,
        "ReadDataByID",
        {"ecuAddress": component.ecu_address, "dataId": info.data_id},
    )
    reply = outcome.final_payload or {}
    return {
        "id": info.key,
        "data": {info.key: reply["value"]},
        "x-sovdsim": {
            "did": info.data_id[2:],
            "unit": info.unit,
            "raw": reply["raw"],
            "uds_response": reply["udsResponse"],
        },
    }


@require_role("engineer", "admin")
async def write_data(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    info = find_data(component, request.match_info["data_id"])
    if info.write is None:
        raise vendor_error(
            405,
            "read-only",
            f"{info.key} cannot be written.",
            headers={"Allow": "GET"},
        )
    value = _written_value(info, await read_body(request, ("data",)))
    await ensure_unlocked(request, vehicle, component)
    await run_command(
        request,
        vehicle,
        "WriteDataByID",
        {"ecuAddress": component.ecu_address, "dataId": info.data_id, "value": value},
    )
    return web.Response(status=204)


def _written_value(info: DidInfo, body: dict[str, Any]) -> str | int | float:
    """`{"data": {"<id>": value}}`, or `{"data": value}` for short."""
    if "data" not in body:
        raise invalid_request("data", "is required")
    data = body["data"]
    if isinstance(data, dict):
        if set(data) != {info.key}:
            raise invalid_request("data", f"must hold exactly the member {info.key!r}")
        data = data[info.key]
    numeric = is_numeric(info)
    if not numeric and not isinstance(data, str):
        raise invalid_request(f"data.{info.key}", "must be a string")
    if numeric and (isinstance(data, bool) or not isinstance(data, int | float)):
        raise invalid_request(f"data.{info.key}", "must be a number")
    if isinstance(data, str) and "\x00" in data:
        raise invalid_request(f"data.{info.key}", "must not contain NUL characters")
    value: str | int | float = data
    return value


async def list_configurations(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    here = f"{component_uri(request, vehicle, component)}/configurations"
    items = [
        {
            "id": info.key,
            "name": info.description,
            "type": "parameter",
            "href": f"{here}/{info.key}",
        }
        for info in _writable(component)
    ]
    return respond(request, {"items": items}, CONFIGURATION_LIST)


def _configuration(request: web.Request, component: Component) -> DidInfo:
    info = find_data(component, request.match_info["data_id"])
    if info.write is None:
        raise resource_not_found(f"configuration {request.match_info['data_id']!r}")
    return info


async def read_configuration(request: web.Request) -> web.Response:
    _configuration(request, component_of(request))
    return await read_data(request)


@require_role("engineer", "admin")
async def write_configuration(request: web.Request) -> web.Response:
    _configuration(request, component_of(request))
    return await write_data(request)
