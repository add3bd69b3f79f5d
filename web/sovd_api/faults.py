"""Faults of a component: its stored DTCs (ReadDTC), one DTC with its environment data
(ReadDTCDetails), and clearing them (ClearDTC)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sovd.dids import DID_CATALOG
from sovd.dtcs import describe_dtc, severity_of
from sovd.uds import DTC_STATUS_BIT_NAMES, decode_dtc
from web.auth.guards import require_role
from web.sovd_api import schemas
from web.sovd_api.common import (
    check_query,
    component_of,
    component_uri,
    flag,
    negative_response,
    respond,
    run_command,
    vehicle_of,
)
from web.sovd_api.errors import SovdApiError, invalid_request, resource_not_found
from web.sovd_api.locking import ensure_unlocked
from web.sovd_api.schemas import INTEGER, LINK, STAMP, STRING, obj

SCOPE = "Default"
STATUS_FILTERS = "status["
REQUEST_OUT_OF_RANGE = 0x31
_STATUS_KEYS = {name.lower(): name for name in DTC_STATUS_BIT_NAMES}
_STATUS_FILTER = re.compile(r"^status\[(?P<key>[A-Za-z]+)\]$")
_NATIVE_CODE = re.compile(r"^[0-9A-Fa-f]{6}$")
_DISPLAY_CODE = re.compile(r"^[PCBUpcbu][0-3][0-9A-Fa-f]{3}$")

FAULT_STATUS = obj(
    {name: {"enum": ["0", "1"]} for name in DTC_STATUS_BIT_NAMES}
    | {
        "mask": {"type": "string", "pattern": "^[0-9A-F]{2}$"},
        "aggregatedStatus": {"enum": ["active", "passive", "cleared"]},
    },
    (*DTC_STATUS_BIT_NAMES, "mask", "aggregatedStatus"),
)
FAULT = obj(
    {
        "code": {"type": "string", "pattern": "^[0-9A-F]{6}$"},
        "display_code": STRING,
        "fault_name": STRING,
        "severity": {"type": "integer", "minimum": 1, "maximum": 4},
        "scope": STRING,
        "status": FAULT_STATUS,
        "href": LINK,
    },
    ("code", "display_code", "fault_name", "severity", "scope", "status"),
)
FAULT_LIST = schemas.items_of(FAULT)
# One identifier of a snapshot record: `{"engine_speed": 2450.0}`, keyed as in /data.
SNAPSHOT_VALUE: schemas.Schema = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {"type": ["string", "number"]},
}
FAULT_DETAIL = obj(
    {
        "item": FAULT,
        "environment_data": obj(
            {
                "extended_data_records": obj(
                    {
                        "data": obj(
                            {
                                "occurrence_counter": INTEGER,
                                "aging_counter": INTEGER,
                                "first_occurrence": STAMP,
                                "last_occurrence": STAMP,
                            },
                            (
                                "occurrence_counter",
                                "aging_counter",
                                "first_occurrence",
                                "last_occurrence",
                            ),
                        )
                    },
                    ("data",),
                ),
                "snapshots": obj(
                    {
                        "data": {
                            "type": "object",
                            "additionalProperties": obj(
                                {
                                    "DTCSnapshotRecordNumberOfIdentifiers": INTEGER,
                                    "DTCSnapshotRecord": {"type": "array", "items": SNAPSHOT_VALUE},
                                },
                                ("DTCSnapshotRecordNumberOfIdentifiers", "DTCSnapshotRecord"),
                            ),
                        }
                    },
                    ("data",),
                ),
            },
        ),
    },
    ("item", "environment_data"),
)


def _aggregated(bits: Mapping[str, bool]) -> str:
    if bits["testFailed"]:
        return "active"
    if bits["pendingDTC"] or bits["confirmedDTC"]:
        return "passive"
    return "cleared"


def fault_json(dtc: Mapping[str, Any], href: str | None = None) -> dict[str, Any]:
    """One DTC of a ReadDTC or ReadDTCDetails reply, as a SOVD fault."""
    bits: Mapping[str, bool] = dtc["status"]
    status_byte = int(dtc["statusByte"], 16)
    fault: dict[str, Any] = {
        "code": dtc["udsDtc"][2:],
        "display_code": dtc["dtcCode"],
        "fault_name": dtc.get("description") or describe_dtc(dtc["dtcCode"]),
        "severity": severity_of(dtc["dtcCode"], status_byte),
        "scope": SCOPE,
        "status": {name: "1" if bits[name] else "0" for name in DTC_STATUS_BIT_NAMES}
        | {"mask": f"{status_byte:02X}", "aggregatedStatus": _aggregated(bits)},
    }
    if href is not None:
        fault["href"] = href
    return fault


class FaultFilter:
    """`status[<bit>]=1|0|true|false` (several are OR-combined), `status[mask]=2F` (any of
    those bits set), `severity=n` (n or more severe), `scope`."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.bits: list[tuple[str, bool]] = []
        self.mask: int | None = None
        for name, value in query.items():
            if not name.startswith(STATUS_FILTERS):
                continue
            match = _STATUS_FILTER.match(name)
            if match is None:
                raise invalid_request(name, "must be status[<bit name>] or status[mask]")
            key = match["key"].lower()
            if key == "mask":
                if not re.fullmatch(r"(0x)?[0-9A-Fa-f]{1,2}", value):
                    raise invalid_request(name, "must be one byte in hex, e.g. 2F")
                self.mask = int(value.removeprefix("0x"), 16)
            elif key in _STATUS_KEYS:
                self.bits.append((_STATUS_KEYS[key], _truth(name, value)))
            else:
                raise invalid_request(name, f"unknown status bit; known: {', '.join(_STATUS_KEYS)}")
        self.severity: int | None = None
        if "severity" in query:
            try:
                self.severity = int(query["severity"])
            except ValueError:
                raise invalid_request("severity", "must be an integer from 1 to 4") from None
            if not 1 <= self.severity <= 4:
                raise invalid_request("severity", "must be an integer from 1 to 4")
        check_scope(query)

    def keeps(self, fault: Mapping[str, Any]) -> bool:
        if self.severity is not None and fault["severity"] > self.severity:
            return False
        status = fault["status"]
        wanted = [status[name] == ("1" if value else "0") for name, value in self.bits]
        if self.mask is not None:
            wanted.append(bool(int(status["mask"], 16) & self.mask))
        return not wanted or any(wanted)


def check_scope(query: Mapping[str, str]) -> None:
    """A vehicle's faults are all in one scope; asking for another is a mistake, not an
    empty answer (a DELETE in it would otherwise clear the ECU's whole fault memory)."""
    scope = query.get("scope")
    if scope is not None and scope.lower() != SCOPE.lower():
        raise invalid_request("scope", f"unknown scope; the only one is {SCOPE}")


def _truth(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise invalid_request(name, "must be 1, 0, true or false")


def _display_code(request: web.Request) -> str:
    """The path's fault code: the native 3-byte code (`042000`) or the display one
    (`P0420`)."""
    code = request.match_info["fault_code"]
    if _DISPLAY_CODE.match(code):
        return code.upper()
    if _NATIVE_CODE.match(code):
        native = int(code, 16)
        if native & 0xFF == 0:
            return decode_dtc(native)
    raise resource_not_found(f"fault {code!r}")


async def list_faults(request: web.Request) -> web.Response:
    check_query(request, ("severity", "scope"), prefixes=(STATUS_FILTERS,))
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    keep = FaultFilter(request.query)
    outcome = await run_command(
        request, vehicle, "ReadDTC", {"ecuAddress": component.ecu_address, "statusMask": "0xFF"}
    )
    reply = outcome.final_payload or {}
    href = f"{component_uri(request, vehicle, component)}/faults"
    faults = [fault_json(dtc, f"{href}/{dtc['udsDtc'][2:]}") for dtc in reply.get("dtcs", ())]
    return respond(request, {"items": [f for f in faults if keep.keeps(f)]}, FAULT_LIST)


async def get_fault(request: web.Request) -> web.Response:
    check_query(request, ("include-extended-data", "include-snapshot-data"))
    extended = flag(request.query, "include-extended-data", default=True)
    snapshots = flag(request.query, "include-snapshot-data", default=True)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    code = _display_code(request)
    try:
        outcome = await run_command(
            request,
            vehicle,
            "ReadDTCDetails",
            {"ecuAddress": component.ecu_address, "dtcCode": code},
        )
    except SovdApiError as exc:
        if exc.parameters.get("nrc") == REQUEST_OUT_OF_RANGE:
            raise resource_not_found(f"stored fault {code}") from None
        raise
    snapshot_reply, extended_reply = outcome.payloads[-2], outcome.payloads[-1]
    environment: dict[str, Any] = {}
    if extended:
        data = extended_reply["extendedData"]
        environment["extended_data_records"] = {
            "data": {
                "occurrence_counter": data["occurrenceCounter"],
                "aging_counter": data["agingCounter"],
                "first_occurrence": data["firstOccurrence"],
                "last_occurrence": data["lastOccurrence"],
            }
        }
    if snapshots:
        record = snapshot_reply["snapshot"]
        environment["snapshots"] = {
            "data": {
                str(record["recordNumber"]): {
                    "DTCSnapshotRecordNumberOfIdentifiers": len(record["identifiers"]),
                    "DTCSnapshotRecord": [_snapshot_value(v) for v in record["identifiers"]],
                }
            }
        }
    body = {"item": fault_json(extended_reply), "environment_data": environment}
    return respond(request, body, FAULT_DETAIL)


def _snapshot_value(value: Mapping[str, Any]) -> dict[str, Any]:
    return {DID_CATALOG[int(value["dataId"], 16)].key: value["value"]}


@require_role("engineer", "admin")
async def clear_faults(request: web.Request) -> web.Response:
    check_query(request, ("scope",))
    check_scope(request.query)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    await ensure_unlocked(request, vehicle, component)
    await run_command(request, vehicle, "ClearDTC", {"ecuAddress": component.ecu_address})
    return web.Response(status=204)


@require_role("engineer", "admin")
async def clear_fault(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    code = _display_code(request)
    await ensure_unlocked(request, vehicle, component)
    outcome = await run_command(
        request, vehicle, "ClearDTC", {"ecuAddress": component.ecu_address, "dtcCode": code}
    )
    reply = outcome.final_payload or {}
    if negative_response(reply) is None and reply.get("clearedCount") == 0:
        raise resource_not_found(f"stored fault {code}")
    return web.Response(status=204)
