"""Handlers of /api/v1/auth/* and /api/v1/audit-logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from aiohttp import web
from attrs import frozen

from db.repositories import AuditFilter
from sovd import strict
from sovd.records import AuditEntry
from web.auth.guards import current_user, require_role
from web.auth.passwords import MAX_PASSWORD_LENGTH
from web.auth.service import ClientInfo, TokenPair
from web.auth.tokens import MAX_TOKEN_LENGTH
from web.bodies import JSON_BODY, MaxLength, json_response, read_body
from web.queries import MAX_OFFSET, QueryReader, page_body
from web.typedefs import auth_service_key, store_key

MAX_USER_AGENT_LENGTH = 256
MAX_AUDIT_PAGE = 1000
# RFC 6749 §5.1: responses that carry tokens must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


MAX_USERNAME_LENGTH = 64


@frozen
class LoginBody:
    username: Annotated[str, strict.NonEmpty(), MaxLength(MAX_USERNAME_LENGTH)]
    password: Annotated[str, strict.NonEmpty(), MaxLength(MAX_PASSWORD_LENGTH)]


@frozen
class RefreshBody:
    refresh_token: Annotated[str, strict.NonEmpty(), MaxLength(MAX_TOKEN_LENGTH)]


_wire = strict.converter(JSON_BODY)
_audit_document = _wire.get_unstructure_hook(AuditEntry)


def client_of(request: web.Request) -> ClientInfo:
    user_agent = request.headers.get("User-Agent")
    return ClientInfo(
        ip_address=request.remote,
        user_agent=readable(user_agent[:MAX_USER_AGENT_LENGTH]) if user_agent else None,
    )


def readable(header_value: str) -> str:
    """A header value as text that any store or log takes: bytes that were not UTF-8 (kept by
    the HTTP parser as lone surrogates) and control characters become U+FFFD."""
    if header_value.isprintable():  # surrogates are not printable either
        return header_value
    text = header_value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def _token_response(tokens: TokenPair) -> web.Response:
    body = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
    }
    return web.json_response(body, headers=NO_STORE)


async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginBody, _wire)
    service = request.app[auth_service_key]
    tokens = await service.login(body.username, body.password, client_of(request))
    return _token_response(tokens)


async def refresh(request: web.Request) -> web.Response:
    body = await read_body(request, RefreshBody, _wire)
    tokens = await request.app[auth_service_key].refresh(body.refresh_token, client_of(request))
    return _token_response(tokens)


async def logout(request: web.Request) -> web.Response:
    await request.app[auth_service_key].logout(current_user(request), client_of(request))
    return web.json_response({"message": "Successfully logged out"})


async def me(request: web.Request) -> web.Response:
    user = await request.app[auth_service_key].profile(current_user(request))
    return web.json_response(
        {
            "user_id": str(user.user_id),
            "username": user.username,
            "role": user.role,
            "email": user.email,
        }
    )


def _audit_filter(query: Mapping[str, str]) -> AuditFilter:
    reader = QueryReader(query, ("action", "user_id", "limit", "offset"))
    action = reader.text("action", max_length=64)
    user_id = reader.uuid("user_id")
    limit = reader.integer("limit", 100, 1, MAX_AUDIT_PAGE)
    offset = reader.integer("offset", 0, 0, MAX_OFFSET)
    reader.check()
    return AuditFilter(action=action, user_id=user_id, limit=limit, offset=offset)


@require_role("admin")
async def list_audit_logs(request: web.Request) -> web.Response:
    query = _audit_filter(request.query)
    page = await request.app[store_key].audit.list(query)
    return json_response(
        page_body(
            "audit_logs",
            [_audit_document(e) for e in page.items],
            total=page.total,
            limit=query.limit,
            offset=query.offset,
        )
    )
