from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from sovd.commands import COMMANDS
from tests.support.api import Client, bearer, seed_users, token_for
from tests.support.openapi import ResponseChecker, UndocumentedResponse
from web.app import create_app
from web.config import Config
from web.openapi import build_document
from web.openapi.sovd import ANSWERS, REQUESTS
from web.typedefs import openapi_document_key, store_key

MakeClient = Callable[..., Awaitable[Client]]
IGNORED_METHODS = {"HEAD", "OPTIONS"}
PUBLIC_OPERATIONS = {
    "login",
    "refresh",
    "openapi_json",
    "docs_page",
    "healthz",
    "health_live",
    "readyz",
    "health_ready",
    "metrics",
    "sovd_version_info",
    "dashboard_root",
    "dashboard",
    "dashboard_redirect",
    "dashboard_file",
    "dashboard_script",
}


def routed(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in IGNORED_METHODS and route.resource is not None
    }


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


def route_drift(app: web.Application, document: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(routes the document lacks, documented operations nothing routes)."""
    routes, described = routed(app), documented(document)
    return (
        sorted(f"{m} {p}" for m, p in routes - described),
        sorted(f"{m} {p}" for m, p in described - routes),
    )


def operations_of(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


async def served_document(client: Client) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_openapi_document_is_public_and_lists_every_command(
    make_client: MakeClient,
) -> None:
    document = await served_document(await make_client())
    assert document["openapi"].startswith("3.1")
    submit = document["paths"]["/api/v1/commands"]["post"]
    variants = submit["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    names = {v["properties"]["command_name"]["const"] for v in variants}
    assert {"ReadDTC", "ClearDTC", "ReadDataByID", "RoutineControl"} <= names
    assert set(submit["responses"]) >= {"202", "401", "403", "404", "415", "422", "429", "503"}


async def test_every_route_is_documented_and_every_documented_path_routed(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    missing, stale = route_drift(client.app, await served_document(client))
    assert missing == [], "routes the OpenAPI document lacks"
    assert stale == [], "documented operations no route answers"


async def test_the_drift_check_names_a_route_added_without_documentation(config: Config) -> None:
    async def extra(request: web.Request) -> web.Response:
        return web.Response()

    app = create_app(config)
    app.router.add_get("/api/v1/undocumented/{thing}", extra)
    app.router.add_delete("/vehicles/{vehicle_id}/sovd/v1/apps", extra)
    document = build_document(COMMANDS.describe())
    document["paths"]["/api/v1/retired"] = {"get": {"responses": {}}}

    missing, stale = route_drift(app, document)
    assert missing == [
        "DELETE /vehicles/{vehicle_id}/sovd/v1/apps",
        "GET /api/v1/undocumented/{thing}",
    ]
    assert stale == ["GET /api/v1/retired"]


def test_every_schema_is_valid_and_every_reference_resolves() -> None:
    document = build_document(COMMANDS.describe())
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)

    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    targets = set(references(document))
    assert targets
    for target in targets:
        node: Any = document
        for token in target.removeprefix("#/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict), target


def test_every_operation_has_an_id_a_tag_security_and_documented_errors() -> None:
    document = build_document(COMMANDS.describe())
    ids = [operation["operationId"] for _, _, operation in operations_of(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations_of(document):
        where = f"{method.upper()} {path}"
        assert operation["tags"], where
        assert "security" in operation, where
        assert "503" in operation["responses"], where
        if operation["operationId"] in PUBLIC_OPERATIONS:
            assert operation["security"] == [], where
        else:
            assert operation["security"] != [], where
            if "websocket" not in operation["tags"]:
                assert "401" in operation["responses"], where
        if "requestBody" in operation:
            assert {"400", "408", "413", "415"} <= set(operation["responses"]), where


def test_sovd_bodies_are_described_by_the_sovd_modules_own_schemas() -> None:
    schemas = build_document(COMMANDS.describe())["components"]["schemas"]
    for name, module_schema in ANSWERS.items():
        described = dict(schemas[name])
        properties = dict(described["properties"])
        assert "schema" in properties.pop("schema")["description"]
        assert described | {"properties": properties} == module_schema, name
    for name, module_schema in REQUESTS.items():
        assert schemas[name] == module_schema, name


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: str(uuid.uuid4()) if "id" in m[0] else "x", path)


async def test_protected_operations_refuse_a_missing_token_and_public_ones_do_not(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    document = await served_document(client)
    for path, method, operation in operations_of(document):
        if "websocket" in operation["tags"] or path.endswith("/events"):
            continue
        response = await client.request(method.upper(), concrete(path))
        where = f"{method.upper()} {path}"
        if operation["security"] == []:
            assert response.status != 401, where
        else:
            assert response.status == 401, where


def _limited_queries(document: dict[str, Any]) -> Iterator[tuple[str, str, str | int, bool]]:
    """(path, parameter, value, accepted): each documented query limit of /api/v1, at it
    and one past it."""
    for path, method, operation in operations_of(document):
        if method != "get" or not path.startswith("/api/v1"):
            continue
        for parameter in operation.get("parameters", ()):
            schema = parameter.get("schema", {})
            if parameter.get("in") != "query":
                continue
            if "maximum" in schema:
                yield path, parameter["name"], schema["maximum"], True
                yield path, parameter["name"], schema["maximum"] + 1, False
            if "minimum" in schema:
                yield path, parameter["name"], schema["minimum"], True
                yield path, parameter["name"], schema["minimum"] - 1, False
            if "maxLength" in schema:
                yield path, parameter["name"], "A" * schema["maxLength"], True
                yield path, parameter["name"], "A" * (schema["maxLength"] + 1), False


async def test_documented_query_limits_are_the_ones_the_handlers_apply(
    make_client: MakeClient, config: Config
) -> None:
    client = await make_client()
    await seed_users(client.app[store_key], config)
    token = await token_for(client, "root")
    document = await served_document(client)
    cases = list(_limited_queries(document))
    assert {(path, name) for path, name, _, _ in cases} >= {
        ("/api/v1/commands", "limit"),
        ("/api/v1/vehicles", "limit"),
        ("/api/v1/vehicles", "search"),
        ("/api/v1/audit-logs", "action"),
    }
    for path, name, value, accepted in cases:
        response = await client.get(path, params={name: str(value)}, headers=bearer(token))
        assert (response.status == 200) is accepted, (path, name, value, response.status)
        if not accepted:
            assert response.status == 422


async def test_documented_body_limits_are_the_ones_the_handlers_apply(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    document = await served_document(client)
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        properties = body["schema"]["properties"]
        at_limit = {name: "a" * schema["maxLength"] for name, schema in properties.items()}
        response = await client.post(path, json=at_limit)
        assert response.status == 401, path
        for name, schema in properties.items():
            for value in ("", "a" * (schema["maxLength"] + 1)):
                response = await client.post(path, json=at_limit | {name: value})
                assert response.status == 422, (path, name, len(value))


async def test_docs_page_lists_every_operation_sovd_included(make_client: MakeClient) -> None:
    client = await make_client()
    document = await served_document(client)
    response = await client.get("/api/v1/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert "/api/v1/openapi.json" in text
    for path in document["paths"]:
        assert f"<code>{path}</code>" in text, path
    assert "/vehicles/{vehicle_id}/sovd/v1/components/{component_id}/faults" in text


def test_the_checker_refuses_undocumented_statuses_and_bodies() -> None:
    checker = ResponseChecker(build_document(COMMANDS.describe()))
    problem = (
        b'{"type":"https://sovd-sim.dev/problems/x","title":"Not Found","status":404,'
        b'"detail":"d","instance":"/api/v1/commands/x","code":"not_found","request_id":"r"}'
    )
    command = "/api/v1/commands/" + str(uuid.uuid4())
    headers = {"X-Request-ID": "r"}
    checker.check("GET", command, 404, "application/problem+json", problem, headers)
    with pytest.raises(UndocumentedResponse, match="status not documented"):
        checker.check("GET", command, 409, "application/problem+json", problem, headers)
    with pytest.raises(UndocumentedResponse, match="content type"):
        checker.check("GET", command, 404, "application/json", problem, headers)
    with pytest.raises(UndocumentedResponse, match="does not fit"):
        checker.check("GET", command, 200, "application/json", b'{"command_id": 1}', headers)
    with pytest.raises(UndocumentedResponse, match="X-Request-ID"):
        checker.check("GET", command, 404, "application/problem+json", problem, {})
    sovd = f"/vehicles/{uuid.uuid4()}/sovd/v1/components/ecm/faults"
    error = b'{"error_code":"vendor-specific","message":"m","vendor_code":"entity-not-found"}'
    checker.check("GET", sovd, 404, "application/json", error, headers)
    with pytest.raises(UndocumentedResponse, match="does not fit"):
        checker.check("GET", sovd, 404, "application/json", problem, headers)


async def test_clients_of_the_api_tests_fail_on_an_undocumented_answer(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    operation = client.app[openapi_document_key]["paths"]["/api/v1/vehicles/{vehicle_id}"]
    del operation["get"]["responses"]["401"]
    with pytest.raises(UndocumentedResponse, match="status not documented"):
        await client.get(f"/api/v1/vehicles/{uuid.uuid4()}")
