"""Holds answers of the API to its OpenAPI document: the status must be documented for the
route and method, and the body must validate against the documented schema (jsonschema,
draft 2020-12, formats checked). `checking_middleware` does it for every answer an aiohttp
client receives."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:sovd-sim:openapi"
SOVD_PREFIX = "/vehicles/"
# What a request no route takes (unknown path, method or role-free 404) may answer.
UNROUTED_STATUSES = {401, 404, 405}
STREAMED = ("text/event-stream",)


class UndocumentedResponse(AssertionError):
    """An answer the OpenAPI document does not describe."""


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class ResponseChecker:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        templates = []
        for template in document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^{}/]+", re.escape(template))
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            templates.append((literal, template, re.compile(f"^{pattern}$")))
        # The most literal template wins: /v1/locks/{lock_id} before /v1/{anything}.
        self._templates = sorted(templates, key=lambda item: -item[0])

    def route_of(self, path: str) -> str | None:
        for _, template, pattern in self._templates:
            if pattern.match(path):
                return template
        return None

    def _resolve(self, node: Mapping[str, Any], pointer: str) -> tuple[Mapping[str, Any], str]:
        """The node and its JSON pointer, following a local `$ref` once."""
        target = node.get("$ref")
        if target is None:
            return node, pointer
        pointer = target.removeprefix("#")
        resolved: Any = self.document
        for token in pointer.strip("/").split("/"):
            resolved = resolved[token.replace("~1", "/").replace("~0", "~")]
        return resolved, pointer

    def _validator(self, pointer: str) -> Draft202012Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": f"{DOCUMENT_URI}#{pointer}"},
                registry=self._registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[pointer] = validator
        return validator

    def check(
        self,
        method: str,
        path: str,
        status: int,
        content_type: str,
        body: bytes | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Raises UndocumentedResponse unless the answer is one the document describes.
        `body` None: not read (a WebSocket upgrade or an event stream)."""
        what = f"{method} {path} -> {status} {content_type}"
        template = self.route_of(path)
        operations = self.document["paths"].get(template, {}) if template else {}
        operation_name = "get" if method.upper() == "HEAD" else method.lower()
        if operation_name not in operations:
            self._check_unrouted(what, method.upper(), path, status, content_type, body)
            return
        assert template is not None
        pointer = f"/paths/{_escape(template)}/{operation_name}/responses/{status}"
        described = operations[operation_name]["responses"].get(str(status))
        if described is None:
            raise UndocumentedResponse(f"{what}: status not documented for {template}")
        response, pointer = self._resolve(described, pointer)
        self._check_headers(what, response, headers)
        content = response.get("content")
        if not content:
            if body:
                raise UndocumentedResponse(f"{what}: documented without a body, got {body!r}")
            return
        if content_type not in content:
            raise UndocumentedResponse(f"{what}: content type not in {sorted(content)}")
        if body is None or not _is_json(content_type) or method.upper() == "HEAD":
            return
        self._check_body(what, f"{pointer}/content/{_escape(content_type)}/schema", body)

    def _check_headers(
        self, what: str, response: Mapping[str, Any], headers: Mapping[str, str] | None
    ) -> None:
        if headers is None:
            return
        for name, described in response.get("headers", {}).items():
            header, _ = self._resolve(described, "")
            if header.get("required") and name not in headers:
                raise UndocumentedResponse(f"{what}: the required header {name} is missing")

    def _check_body(self, what: str, pointer: str, body: bytes) -> None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UndocumentedResponse(f"{what}: the body is not JSON: {body[:200]!r}") from None
        try:
            self._validator(pointer).validate(document)
        except ValidationError as exc:
            raise UndocumentedResponse(
                f"{what}: the body does not fit the schema at {pointer}: {exc.message} "
                f"(at {'/'.join(map(str, exc.absolute_path)) or 'the top'})"
            ) from None

    def _check_unrouted(
        self,
        what: str,
        method: str,
        path: str,
        status: int,
        content_type: str,
        body: bytes | None,
    ) -> None:
        """No documented operation: a CORS preflight's answer (204, or 403 for an origin
        not allowed), or the edge's 401, 404 or 405 error."""
        if method == "OPTIONS" and status == 204:
            return
        if status not in UNROUTED_STATUSES | ({403} if method == "OPTIONS" else set()):
            raise UndocumentedResponse(f"{what}: no documented operation answers this")
        sovd = path.startswith(SOVD_PREFIX)
        name = "GenericError" if sovd else "Problem"
        wanted = "application/json" if sovd else "application/problem+json"
        if content_type != wanted:
            raise UndocumentedResponse(f"{what}: an error without an operation must be {wanted}")
        if body is not None:
            self._check_body(what, f"/components/schemas/{name}", body)


async def checked(
    checker: ResponseChecker, request: ClientRequest, response: ClientResponse
) -> None:
    """Checks one answer; reads its body (aiohttp keeps it for the caller) unless it is an
    upgrade or a stream."""
    streamed = response.status == 101 or response.content_type in STREAMED
    body = None if streamed else await response.read()
    checker.check(
        request.method,
        request.url.path,
        response.status,
        response.content_type if response.headers.get("Content-Type") else "",
        body,
        response.headers,
    )


def checking_middleware(
    document_of: Callable[[], Mapping[str, Any]],
) -> Callable[[ClientRequest, ClientHandlerType], Any]:
    """An aiohttp client middleware holding every answer to the document `document_of`
    returns (read at the first answer, once the app under test has built it)."""
    checkers: list[ResponseChecker] = []

    async def check_response(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        response = await handler(request)
        if not checkers:
            checkers.append(ResponseChecker(document_of()))
        await checked(checkers[0], request, response)
        return response

    return check_response
