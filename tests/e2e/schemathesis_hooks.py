"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for fuzzing a served sovd-sim: most generated ids
are swapped for real ones of the fleet under test, so requests reach the vehicles instead of
404ing, and nothing deletes that fleet or spawns a large one.

`SOVD_FUZZ_TARGET` holds `{"fleet": name, "profile": name, "vehicles": [ids]}`. Each choice
is a hash of the generated case: the same case is mapped the same way on every run, and a
value that is real already stays as it is (ids taken from links keep pointing at what the
link's request made)."""

from __future__ import annotations

import json
import os
import re
import uuid
import zlib
from collections.abc import Sequence
from typing import Any

import schemathesis

from sovd.demo import DEMO_PROFILES
from sovd.dids import DID_CATALOG, IDENTIFICATION_DIDS
from sovd.entities import entities_of
from web.sovd_api.operations import OPERATIONS

TARGET = json.loads(os.environ["SOVD_FUZZ_TARGET"])
FLEET: str = TARGET["fleet"]
VEHICLES: list[str] = TARGET["vehicles"]
PROFILE = next(profile for profile in DEMO_PROFILES if profile.name == TARGET["profile"])
ENTITIES = entities_of(PROFILE)
COMPONENTS = [component.id for component in ENTITIES.components]
ADDRESSES = [component.ecu_address for component in ENTITIES.components]
AREAS = [area.id for area in ENTITIES.areas]
DATA_IDS = sorted(
    {DID_CATALOG[did].key for did in IDENTIFICATION_DIDS}
    | {DID_CATALOG[did].key for ecu in PROFILE.ecus for did in ecu.signal_dids}
)
WRITABLE_IDS = sorted(DID_CATALOG[did].key for did in DID_CATALOG if DID_CATALOG[did].write)
FAULT_CODES = sorted({entry.code for entry in PROFILE.dtc_pool})
ECU_ADDRESS = re.compile(r"^0x[0-9A-Fa-f]{2}$")
LARGEST_SPAWN = 2
# One generated value in this many stays as generated (an unknown id: the 404 paths).
KEEP_ONE_IN = 4


def _pick(value: Any, real: Sequence[str], seed: int) -> Any:
    """A real value for `value`, or `value` itself when it is real or kept as generated."""
    if not isinstance(value, str) or seed % KEEP_ONE_IN == 0:
        return value
    if value in real or value.lower().replace("_", "-") in real:  # the server reads both
        return value
    return real[(seed + zlib.crc32(value.encode("utf-8", "surrogatepass"))) % len(real)]


def _seed(case: Any) -> int:
    """The case's own number: equal cases are mapped alike."""
    drawn = (case.method, case.path, case.path_parameters, case.query, case.body)
    return zlib.crc32(repr(drawn).encode("utf-8", "surrogatepass"))


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    seed = _seed(case)
    parameters = case.path_parameters or {}
    if _is_uuid(parameters.get("vehicle_id")):
        parameters["vehicle_id"] = _pick(parameters["vehicle_id"], VEHICLES, seed)
    data_ids = WRITABLE_IDS if "/configurations/" in case.path else DATA_IDS
    for name, real in (
        ("component_id", COMPONENTS),
        ("area_id", AREAS),
        ("data_id", data_ids),
        ("fault_code", FAULT_CODES),
        ("operation_id", list(OPERATIONS)),
    ):
        if name in parameters:
            parameters[name] = _pick(parameters[name], real, seed)
    if case.path == "/api/v1/fleets/{name}" and parameters.get("name") == FLEET:
        parameters["name"] = "not-" + FLEET
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        if case.path == "/api/v1/commands":
            _real_command_target(case.body, seed)
        elif case.path == "/api/v1/fleets":
            _small_fleets(case.body)
        elif case.path.endswith("/cyclic-subscriptions"):
            _real_resource(case.body, seed)
    return case


def _real_command_target(body: dict[str, Any], seed: int) -> None:
    if _is_uuid(body.get("vehicle_id")):
        body["vehicle_id"] = _pick(body["vehicle_id"], VEHICLES, seed)
    params = body.get("command_params")
    # Only a well-formed address is swapped: a malformed one is what a negative case tests.
    if isinstance(params, dict) and ECU_ADDRESS.match(str(params.get("ecuAddress"))):
        params["ecuAddress"] = _pick(params["ecuAddress"], ADDRESSES, seed)


def _real_resource(body: dict[str, Any], seed: int) -> None:
    resource = body.get("resource")
    if isinstance(resource, str):
        picked = _pick(resource, DATA_IDS, seed)
        if picked != resource:
            body["resource"] = f"data/{picked}"


def _small_fleets(body: dict[str, Any]) -> None:
    """Fleets of at most LARGEST_SPAWN vehicles: the server under test is small."""
    fleets = body.get("fleets")
    if not isinstance(fleets, list):
        return
    for fleet in fleets:
        count = fleet.get("count") if isinstance(fleet, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count > LARGEST_SPAWN:
            fleet["count"] = count % (LARGEST_SPAWN + 1)
