from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.support.api import Client


async def test_openapi_document_is_public_and_lists_every_command(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client()
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    submit = document["paths"]["/api/v1/commands"]["post"]
    variants = submit["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    names = {v["properties"]["command_name"]["const"] for v in variants}
    assert {"ReadDTC", "ClearDTC", "ReadDataByID", "RoutineControl"} <= names
    assert set(submit["responses"]) >= {"202", "404", "422", "429", "503"}


async def test_docs_page_lists_the_endpoints(make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client()
    response = await client.get("/api/v1/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert "/api/v1/commands/{command_id}/responses" in text
    assert "/api/v1/openapi.json" in text
