"""The OpenAPI paths of every vehicle's SOVD server (/vehicles/{vehicle_id}/sovd/...). The
bodies' schemas are the SOVD modules' own, the ones `include-schema=true` serves."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from sovd.uds import DTC_STATUS_BIT_NAMES
from web.openapi.shapes import (
    BEARER,
    JSON,
    OVERLOADED,
    PUBLIC,
    UUID,
    Operation,
    Responses,
    Schema,
    empty,
    header_ref,
    json_body,
    parameter_ref,
    path,
    query,
    ref,
    request_body,
    response_ref,
    sovd_error,
)
from web.problems import PROBLEM_CONTENT_TYPE
from web.sovd_api import data, faults, locks, modes, operations, schemas, subscriptions
from web.sovd_api.common import COMPONENT_PATH as COMPONENT
from web.sovd_api.common import SOVD_PATH as SOVD
from web.sovd_api.common import V1_PATH as V1
from web.sovd_api.data import CATEGORY_ORDER

# Every body a GET answers, by component name: `include-schema=true` adds `schema` to it.
ANSWERS: dict[str, Schema] = {
    "SovdVersionInfo": schemas.VERSION_INFO,
    "SovdRoot": schemas.ROOT,
    "SovdEntityCollection": schemas.ENTITY_COLLECTION,
    "SovdComponent": schemas.COMPONENT,
    "SovdArea": schemas.AREA,
    "SovdFaultList": faults.FAULT_LIST,
    "SovdFaultDetail": faults.FAULT_DETAIL,
    "SovdDataList": data.DATA_LIST,
    "SovdDataCategoryList": data.CATEGORY_LIST,
    "SovdDataGroupList": data.GROUP_LIST,
    "SovdDataValue": data.DATA_VALUE,
    "SovdConfigurationList": data.CONFIGURATION_LIST,
    "SovdOperationList": operations.OPERATION_LIST,
    "SovdOperationDetail": operations.OPERATION_DETAIL,
    "SovdExecutionList": operations.EXECUTION_LIST,
    "SovdExecution": operations.EXECUTION,
    "SovdExecutionStarted": operations.STARTED,
    "SovdOperationResult": operations.SYNC_RESULT,
    "SovdModeList": modes.MODE_LIST,
    "SovdSessionMode": modes.SESSION_MODE,
    "SovdSecurityMode": modes.SECURITY_MODE,
    "SovdSessionSet": modes.SESSION_SET,
    "SovdSecuritySet": modes.SECURITY_SET,
    "SovdLockList": locks.LOCK_LIST,
    "SovdLock": locks.LOCK,
    "SovdSubscriptionList": subscriptions.SUBSCRIPTION_LIST,
    "SovdSubscription": subscriptions.SUBSCRIPTION,
}
REQUESTS: dict[str, Schema] = {
    "SovdDataWrite": data.DATA_WRITE,
    "SovdSessionRequest": modes.SESSION_REQUEST,
    "SovdSecurityRequest": modes.SECURITY_REQUEST,
    "SovdExecutionRequest": operations.START_REQUEST,
    "SovdExecutionControl": operations.CONTROL_REQUEST,
    "SovdLockRequest": locks.LOCK_REQUEST,
    "SovdLockExtension": locks.LOCK_EXTENSION,
    "SovdSubscriptionRequest": subscriptions.SUBSCRIPTION_REQUEST,
    "SovdSubscriptionEvent": subscriptions.SUBSCRIPTION_EVENT,
}
SCHEMA_MEMBER: Schema = {
    "type": "object",
    "description": "Only with include-schema=true: a JSON Schema (2020-12) the rest of the "
    "body validates against.",
}


def _with_schema_member(schema: Schema) -> Schema:
    answer = copy.deepcopy(schema)
    answer["properties"]["schema"] = SCHEMA_MEMBER
    return answer


def sovd_schemas() -> dict[str, Schema]:
    return {
        "GenericError": schemas.GENERIC_ERROR,
        **{name: _with_schema_member(schema) for name, schema in ANSWERS.items()},
        **copy.deepcopy(REQUESTS),
    }


TRUTH: Schema = {"enum": ["true", "false", "1", "0"], "description": "In any case."}
PARAMETERS: dict[str, Any] = {
    "IncludeSchema": query("include-schema", TRUTH, "Add `schema`: the JSON Schema of the body."),
    "Tags": query("tags", {"type": "string"}, "Accepted and ignored (no resource has tags)."),
    "VehicleId": path(
        "vehicle_id",
        UUID,
        "The vehicle's id (GET /api/v1/vehicles); a malformed or unknown one answers 404 "
        "entity-not-found.",
    ),
    "ComponentId": path(
        "component_id",
        {"type": "string"},
        "A component (ECU) by its id (`engine-control-module`) or its address (`0x01`).",
    ),
}
COMMON_QUERY = [parameter_ref("IncludeSchema"), parameter_ref("Tags")]
PATH_PARAMETERS = {
    "vehicle_id": parameter_ref("VehicleId"),
    "component_id": parameter_ref("ComponentId"),
}
VEHICLE_ID = parameter_ref("VehicleId")
COMPONENT_ID = parameter_ref("ComponentId")
AREA_ID = path("area_id", {"type": "string"}, "e.g. `powertrain`.")
DATA_ID = path(
    "data_id", {"type": "string"}, "A data resource by its id (`vin`) or DID (`F190`, `0xF190`)."
)
FAULT_CODE = path(
    "fault_code",
    {"type": "string"},
    "The native 3-byte code (`042000`) or the display one (`P0420`).",
)
OPERATION_ID = path(
    "operation_id",
    {"type": "string"},
    f"One of {', '.join(operations.OPERATIONS)} (case and `_` for `-` do not matter).",
)
EXECUTION_ID = path("execution_id", {"type": "string"}, "The execution's id (a command id).")
LOCK_ID = path("lock_id", {"type": "string"})
SUBSCRIPTION_ID = path("subscription_id", {"type": "string"})
RESPONSES: dict[str, Any] = {
    "SovdInvalidRequest": sovd_error(
        "invalid-request: an unknown query parameter, a malformed value or body, or a NUL in "
        "the request target (parameters.field names it)"
    ),
    "SovdNotFound": sovd_error(
        "entity-not-found (vehicle, component, area) or resource-not-found (the rest)"
    ),
    "SovdUnavailable": {
        "description": OVERLOADED,
        "headers": {"Retry-After": header_ref("Retry-After")},
        "content": {
            JSON: {"schema": ref("GenericError")},
            PROBLEM_CONTENT_TYPE: {"schema": ref("Problem")},
        },
    },
    "SovdNotSignedIn": sovd_error(
        "insufficient-access-rights: no bearer token, or a bad or revoked one",
        headers=["WWW-Authenticate"],
    ),
    "SovdForbidden": sovd_error("insufficient-access-rights: viewers may only read"),
    "SovdVehicleBusy": sovd_error(
        "vehicle-busy: the vehicle's mailbox is full", headers=["Retry-After"]
    ),
    "SovdNegativeResponse": sovd_error(
        "error-response: the ECU answered negatively (parameters: service, nrc, nrc_name, "
        "service_name, command_id)"
    ),
    "SovdNotResponding": sovd_error("not-responding: the vehicle did not answer in time"),
    "SovdLocked": sovd_error(
        "precondition-not-fulfilled: another user holds a lock on the component or the "
        "vehicle (parameters.locked_entity)"
    ),
    "SovdBodyTimeout": sovd_error("request-timeout: the body did not arrive in time"),
    "SovdBodyTooLarge": sovd_error("payload-too-large: the body is larger than 1 MiB"),
    "SovdNotJson": sovd_error("unsupported-media-type: the body is not application/json"),
}

RAN_COMMANDS = "X-Command-ID"


def sovd_operation(
    operation_id: str,
    summary: str,
    responses: Responses,
    *,
    parameters: Iterable[dict[str, Any]],
    public: bool = False,
    role: bool = False,
    runs_commands: bool = False,
    locked: bool = False,
    body: dict[str, Any] | None = None,
    query_parameters: Iterable[dict[str, Any]] = (),
) -> Operation:
    """One SOVD operation. Its errors are GenericError bodies (application/json); only the
    server's connection bound answers problem+json, before any route is known."""
    answers: Responses = {
        "400": response_ref("SovdInvalidRequest"),
        "404": response_ref("SovdNotFound"),
        "503": response_ref("SovdUnavailable"),
    }
    if not public:
        answers["401"] = response_ref("SovdNotSignedIn")
    if role:
        answers["403"] = response_ref("SovdForbidden")
    if runs_commands:
        answers["429"] = response_ref("SovdVehicleBusy")
        answers["502"] = response_ref("SovdNegativeResponse")
        answers["504"] = response_ref("SovdNotResponding")
    if locked:
        answers["409"] = response_ref("SovdLocked")
    if body is not None:
        answers["408"] = response_ref("SovdBodyTimeout")
        answers["413"] = response_ref("SovdBodyTooLarge")
        answers["415"] = response_ref("SovdNotJson")
    answers |= copy.deepcopy(responses)
    if runs_commands:
        for status, response in answers.items():
            if status.startswith("2"):
                response.setdefault("headers", {})[RAN_COMMANDS] = header_ref(RAN_COMMANDS)
    built: Operation = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["sovd"],
        "security": PUBLIC if public else BEARER,
        "parameters": [*parameters, *query_parameters, *COMMON_QUERY],
    }
    if body is not None:
        built["requestBody"] = body
    built["responses"] = dict(sorted(answers.items()))
    return built


def _ok(name: str, description: str = "OK", **extra: Any) -> Responses:
    return {"200": json_body(ref(name), description, **extra)}


def _discovery() -> dict[str, Any]:
    vehicle = [VEHICLE_ID]
    component = [VEHICLE_ID, COMPONENT_ID]
    area = [VEHICLE_ID, AREA_ID]

    def get(operation_id: str, summary: str, answer: str, parameters: list[Any]) -> Any:
        return {"get": sovd_operation(operation_id, summary, _ok(answer), parameters=parameters)}

    return {
        SOVD + "/version-info": {
            "get": sovd_operation(
                "sovd_version_info",
                "Where discovery starts: the SOVD version and the vehicle's base URI",
                _ok("SovdVersionInfo"),
                parameters=vehicle,
                public=True,
            )
        },
        V1: get("sovd_root", "The vehicle's root capabilities", "SovdRoot", vehicle),
        V1 + "/": get("sovd_root_slash", "The same, with a trailing slash", "SovdRoot", vehicle),
        V1 + "/components": get(
            "sovd_list_components", "The vehicle's ECUs", "SovdEntityCollection", vehicle
        ),
        COMPONENT: get("sovd_get_component", "One ECU", "SovdComponent", component),
        COMPONENT + "/subcomponents": get(
            "sovd_list_subcomponents", "None: ECUs have none", "SovdEntityCollection", component
        ),
        COMPONENT + "/hosts": get(
            "sovd_list_hosts", "None: ECUs host no apps", "SovdEntityCollection", component
        ),
        COMPONENT + "/belongs-to": get(
            "sovd_component_areas", "The areas holding the ECU", "SovdEntityCollection", component
        ),
        V1 + "/areas": get(
            "sovd_list_areas", "The vehicle's functional areas", "SovdEntityCollection", vehicle
        ),
        V1 + "/areas/{area_id}": get("sovd_get_area", "One area", "SovdArea", area),
        V1 + "/areas/{area_id}/contains": get(
            "sovd_area_contains", "The area's components", "SovdEntityCollection", area
        ),
        V1 + "/areas/{area_id}/related-components": get(
            "sovd_area_related_components",
            "The area's components",
            "SovdEntityCollection",
            area,
        ),
        V1 + "/areas/{area_id}/subareas": get(
            "sovd_area_subareas", "None: areas are not nested", "SovdEntityCollection", area
        ),
        V1 + "/apps": get("sovd_list_apps", "None", "SovdEntityCollection", vehicle),
        V1 + "/functions": get("sovd_list_functions", "None", "SovdEntityCollection", vehicle),
    }


def _faults() -> dict[str, Any]:
    component = [VEHICLE_ID, COMPONENT_ID]
    scope = query("scope", {"enum": [faults.SCOPE]}, "The only scope (in any case).")
    status_filters = [
        query(
            f"status[{name}]",
            {"enum": ["1", "0", "true", "false"]},
            "Faults with this status bit (several are OR-combined).",
        )
        for name in DTC_STATUS_BIT_NAMES
    ] + [
        query(
            "status[mask]",
            {"type": "string", "pattern": "^(0x)?[0-9A-Fa-f]{1,2}$"},
            "Faults with any of these status bits, one byte in hex.",
        )
    ]
    cleared = {"204": empty("Cleared")}
    return {
        COMPONENT + "/faults": {
            "get": sovd_operation(
                "sovd_list_faults",
                "The ECU's stored DTCs (ReadDTC), filtered",
                _ok("SovdFaultList"),
                parameters=component,
                runs_commands=True,
                query_parameters=[
                    query(
                        "severity",
                        {"type": "integer", "minimum": 1, "maximum": 4},
                        "This severity or a more severe one (1 is the most severe).",
                    ),
                    scope,
                    *status_filters,
                ],
            ),
            "delete": sovd_operation(
                "sovd_clear_faults",
                "Clear the ECU's fault memory (ClearDTC)",
                cleared,
                parameters=component,
                role=True,
                runs_commands=True,
                locked=True,
                query_parameters=[scope],
            ),
        },
        COMPONENT + "/faults/{fault_code}": {
            "get": sovd_operation(
                "sovd_get_fault",
                "One stored DTC with its environment data (ReadDTCDetails)",
                _ok("SovdFaultDetail"),
                parameters=[*component, FAULT_CODE],
                runs_commands=True,
                query_parameters=[
                    query("include-extended-data", TRUTH, "Counters and occurrences."),
                    query("include-snapshot-data", TRUTH, "The snapshot record."),
                ],
            ),
            "delete": sovd_operation(
                "sovd_clear_fault",
                "Clear one DTC (ClearDTC)",
                cleared,
                parameters=[*component, FAULT_CODE],
                role=True,
                runs_commands=True,
                locked=True,
            ),
        },
    }


def _data() -> dict[str, Any]:
    component = [VEHICLE_ID, COMPONENT_ID]
    resource = [*component, DATA_ID]
    categories = [
        query(
            name,
            {
                "type": "string",
                "pattern": f"^(({'|'.join(CATEGORY_ORDER)})?,?)*$",
            },
            f"Comma-separated categories: {', '.join(CATEGORY_ORDER)}.",
        )
        for name in ("category", "categories")
    ]
    write = request_body(ref("SovdDataWrite"), example={"data": {"repair_shop_code": "WS0042"}})

    def put(operation_id: str, summary: str, read_only: bool) -> Operation:
        answers: Responses = {"204": empty("Written (WriteDataByID)")}
        if read_only:
            answers["405"] = sovd_error(
                "read-only: the resource cannot be written", headers=["Allow"]
            )
        return sovd_operation(
            operation_id,
            summary,
            answers,
            parameters=resource,
            role=True,
            runs_commands=True,
            locked=True,
            body=write,
        )

    return {
        COMPONENT + "/data": {
            "get": sovd_operation(
                "sovd_list_data",
                "The ECU's data resources",
                _ok("SovdDataList"),
                parameters=component,
                query_parameters=[
                    *categories,
                    query("groups", {"type": "string"}, "Comma-separated group ids."),
                ],
            )
        },
        COMPONENT + "/data-categories": {
            "get": sovd_operation(
                "sovd_list_data_categories",
                "The categories of the ECU's data",
                _ok("SovdDataCategoryList"),
                parameters=component,
            )
        },
        COMPONENT + "/data-groups": {
            "get": sovd_operation(
                "sovd_list_data_groups",
                "The groups of the ECU's data",
                _ok("SovdDataGroupList"),
                parameters=component,
                query_parameters=categories,
            )
        },
        COMPONENT + "/data/{data_id}": {
            "get": sovd_operation(
                "sovd_read_data",
                "Read a value (ReadDataByID)",
                _ok("SovdDataValue"),
                parameters=resource,
                runs_commands=True,
            ),
            "put": put(
                "sovd_write_data",
                "Write a value (WriteDataByID): needs the extended session, the VIN also "
                "security access",
                read_only=True,
            ),
        },
        COMPONENT + "/configurations": {
            "get": sovd_operation(
                "sovd_list_configurations",
                "The ECU's writable data resources",
                _ok("SovdConfigurationList"),
                parameters=component,
            )
        },
        COMPONENT + "/configurations/{data_id}": {
            "get": sovd_operation(
                "sovd_read_configuration",
                "Read a writable value",
                _ok("SovdDataValue"),
                parameters=resource,
                runs_commands=True,
            ),
            "put": put("sovd_write_configuration", "Write a writable value", read_only=False),
        },
    }


def _execution_links(*targets: str) -> dict[str, Any]:
    parameters = {
        "vehicle_id": "$request.path.vehicle_id",
        "component_id": "$request.path.component_id",
        "operation_id": "$request.path.operation_id",
        "execution_id": "$response.body#/id",
    }
    return {
        target.title().replace("_", ""): {"operationId": target, "parameters": parameters}
        for target in targets
    }


def _operations() -> dict[str, Any]:
    component = [VEHICLE_ID, COMPONENT_ID]
    operation = [*component, OPERATION_ID]
    execution = [*operation, EXECUTION_ID]
    running = sovd_error(
        "precondition-not-fulfilled: the operation already runs on this component, or the "
        "execution has ended or cannot be stopped; or another user's lock"
    )
    started = json_body(
        ref("SovdExecutionStarted"),
        "The asynchronous operation started; poll the execution at Location",
        headers=["Location"],
        links=_execution_links(
            "sovd_get_execution", "sovd_control_execution", "sovd_delete_execution"
        ),
    )
    return {
        COMPONENT + "/operations": {
            "get": sovd_operation(
                "sovd_list_operations",
                "The ECU's operations",
                _ok("SovdOperationList"),
                parameters=component,
            )
        },
        COMPONENT + "/operations/{operation_id}": {
            "get": sovd_operation(
                "sovd_get_operation",
                "One operation, with the modes it needs",
                _ok("SovdOperationDetail"),
                parameters=operation,
            )
        },
        COMPONENT + "/operations/{operation_id}/executions": {
            "get": sovd_operation(
                "sovd_list_executions",
                "The operation's recent executions on the ECU",
                _ok("SovdExecutionList"),
                parameters=operation,
            ),
            "post": sovd_operation(
                "sovd_start_execution",
                "Run the operation: a synchronous one answers its result, an asynchronous "
                "one (self-test) 202 and runs on; `timeout` stops it after that many seconds",
                {
                    "200": json_body(ref("SovdOperationResult"), "The synchronous result"),
                    "202": started,
                    "409": running,
                },
                parameters=operation,
                role=True,
                runs_commands=True,
                locked=True,
                body=request_body(ref("SovdExecutionRequest"), required=False),
            ),
        },
        COMPONENT + "/operations/{operation_id}/executions/{execution_id}": {
            "get": sovd_operation(
                "sovd_get_execution",
                "One execution: status, progress, result or error",
                _ok("SovdExecution"),
                parameters=execution,
            ),
            "put": sovd_operation(
                "sovd_control_execution",
                "Stop a running execution (`capability: stop`)",
                {"202": json_body(ref("SovdExecutionStarted"), "Stopping"), "409": running},
                parameters=execution,
                role=True,
                locked=True,
                body=request_body(ref("SovdExecutionControl")),
            ),
            "delete": sovd_operation(
                "sovd_delete_execution",
                "Stop the execution if it runs and drop it from the list (its command stays)",
                {"204": empty("Deleted"), "409": running},
                parameters=execution,
                role=True,
                locked=True,
            ),
        },
    }


def _modes() -> dict[str, Any]:
    component = [VEHICLE_ID, COMPONENT_ID]

    def put(operation_id: str, summary: str, answer: str, request: str, example: Any) -> Any:
        return sovd_operation(
            operation_id,
            summary,
            _ok(answer),
            parameters=component,
            role=True,
            runs_commands=True,
            locked=True,
            body=request_body(ref(request), example=example),
        )

    return {
        COMPONENT + "/modes": {
            "get": sovd_operation(
                "sovd_list_modes", "The ECU's modes", _ok("SovdModeList"), parameters=component
            )
        },
        COMPONENT + "/modes/session": {
            "get": sovd_operation(
                "sovd_get_session",
                "The active diagnostic session",
                _ok("SovdSessionMode"),
                parameters=component,
                runs_commands=True,
            ),
            "put": put(
                "sovd_set_session",
                "Switch the session (DiagnosticSessionControl); `mode_expiration` is its S3 "
                "timeout in seconds",
                "SovdSessionSet",
                "SovdSessionRequest",
                {"value": "extended", "mode_expiration": 600},
            ),
        },
        COMPONENT + "/modes/security": {
            "get": sovd_operation(
                "sovd_get_security",
                "The unlocked security level, if any",
                _ok("SovdSecurityMode"),
                parameters=component,
            ),
            "put": put(
                "sovd_set_security",
                "Security access: `Level_<n>_RequestSeed` answers the seed, `Level_<n>` with "
                "`Key.Send_Key` unlocks",
                "SovdSecuritySet",
                "SovdSecurityRequest",
                {"value": "Level_1_RequestSeed"},
            ),
        },
    }


def _locks(entity: str, prefix: str, path_names: tuple[str, ...]) -> dict[str, Any]:
    parameters = [PATH_PARAMETERS[name] for name in path_names]
    lock = [*parameters, LOCK_ID]
    links = {
        name: {
            "operationId": f"{prefix}_{name.lower()}_lock",
            "parameters": {name: f"$request.path.{name}" for name in path_names}
            | {"lock_id": "$response.body#/id"},
        }
        for name in ("Get", "Extend", "Release")
    }
    held_by_another = sovd_error(
        "A lock of another user: precondition-not-fulfilled (acquire) or "
        "insufficient-access-rights (extend, release)"
    )
    return {
        entity + "/locks": {
            "get": sovd_operation(
                f"{prefix}_list_locks",
                "The unexpired locks here",
                _ok("SovdLockList"),
                parameters=parameters,
            ),
            "post": sovd_operation(
                f"{prefix}_acquire_lock",
                "Lock for `lock_expiration` seconds (one's own lock is extended; an admin may "
                "`break_lock` another's)",
                {
                    "201": json_body(ref("SovdLock"), "Locked", headers=["Location"], links=links),
                    "409": held_by_another,
                },
                parameters=parameters,
                role=True,
                body=request_body(ref("SovdLockRequest"), example={"lock_expiration": 60}),
            ),
        },
        entity + "/locks/{lock_id}": {
            "get": sovd_operation(
                f"{prefix}_get_lock", "One lock", _ok("SovdLock"), parameters=lock
            ),
            "put": sovd_operation(
                f"{prefix}_extend_lock",
                "The owner's lock lasts `lock_expiration` seconds from now",
                {"204": empty("Extended"), "409": held_by_another},
                parameters=lock,
                role=True,
                body=request_body(ref("SovdLockExtension")),
            ),
            "delete": sovd_operation(
                f"{prefix}_release_lock",
                "Release the lock (the owner, or an admin)",
                {"204": empty("Released"), "409": held_by_another},
                parameters=lock,
                role=True,
            ),
        },
    }


def _subscriptions() -> dict[str, Any]:
    component = [VEHICLE_ID, COMPONENT_ID]
    subscription = [*component, SUBSCRIPTION_ID]
    links = {
        name: {
            "operationId": f"sovd_{name.lower()}_subscription",
            "parameters": {
                "vehicle_id": "$request.path.vehicle_id",
                "component_id": "$request.path.component_id",
                "subscription_id": "$response.body#/id",
            },
        }
        for name in ("Get", "Delete")
    }
    stream = sovd_operation(
        "sovd_subscription_events",
        "Server-Sent Events: one `data:` line per interval (a value, or the error of that "
        "read) until the subscription ends; a newer stream of it ends this one",
        {
            "200": {
                "description": "The event stream; each event's data is SovdSubscriptionEvent",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "x-sse-data": ref("SovdSubscriptionEvent"),
            }
        },
        parameters=subscription,
        query_parameters=[
            query("token", {"type": "string"}, "The access token, for EventSource clients.")
        ],
    )
    stream["security"] = [{"bearer": []}, {"subscriptionToken": []}]
    return {
        COMPONENT + "/cyclic-subscriptions": {
            "get": sovd_operation(
                "sovd_list_subscriptions",
                "The caller's subscriptions of the ECU",
                _ok("SovdSubscriptionList"),
                parameters=component,
            ),
            "post": sovd_operation(
                "sovd_create_subscription",
                "Subscribe to a data resource: its event_source streams a value per interval",
                {
                    "201": json_body(
                        ref("SovdSubscription"), "Subscribed", headers=["Location"], links=links
                    ),
                    "429": sovd_error(
                        "too-many-subscriptions: the caller holds the most it may",
                        headers=["Retry-After"],
                    ),
                },
                parameters=component,
                body=request_body(
                    ref("SovdSubscriptionRequest"),
                    example={"resource": "data/engine_speed", "interval": "slow", "duration": 5},
                ),
            ),
        },
        COMPONENT + "/cyclic-subscriptions/{subscription_id}": {
            "get": sovd_operation(
                "sovd_get_subscription",
                "One subscription (its owner, or an admin)",
                _ok("SovdSubscription"),
                parameters=subscription,
            ),
            "delete": sovd_operation(
                "sovd_delete_subscription",
                "End the subscription and its stream",
                {"204": empty("Ended")},
                parameters=subscription,
            ),
        },
        COMPONENT + "/cyclic-subscriptions/{subscription_id}/events": {"get": stream},
    }


SUBSCRIPTION_TOKEN = {
    "type": "apiKey",
    "in": "query",
    "name": "token",
    "description": "The access token as `?token=`, on event streams only (EventSource "
    "cannot send headers).",
}


def sovd_paths() -> dict[str, Any]:
    return {
        **_discovery(),
        **_faults(),
        **_data(),
        **_operations(),
        **_modes(),
        **_locks(V1, "sovd_vehicle", ("vehicle_id",)),
        **_locks(COMPONENT, "sovd_component", ("vehicle_id", "component_id")),
        **_subscriptions(),
    }
