"""Handlers of /api/v1/auth/* and /api/v1/audit-logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aiohttp import web

from db.repositories import AuditFilter
from sovd.records import AuditEntry
from web.auth.guards import current_user, require_role
from web.auth.passwords import MAX_PASSWORD_LENGTH
from web.auth.service import ClientInfo, TokenPair
from web.auth.tokens import MAX_TOKEN_LENGTH
from web.bodies import StringField, read_string_fields
from web.queries import MAX_OFFSET, QueryReader, page_body
from web.typedefs import auth_service_key, store_key

LOGIN_FIELDS = {
    "username": StringField(max_length=64),
    "password": StringField(max_length=MAX_PASSWORD_LENGTH),
}
REFRESH_FIELDS = {"refresh_token": StringField(max_length=MAX_TOKEN_LENGTH)}
MAX_USER_AGENT_LENGTH = 256
MAX_AUDIT_PAGE = 1000
# RFC 6749 §5.1: responses that carry tokens must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def client_of(request: web.Request) -> ClientInfo:
    user_agent = request.headers.get("User-Agent")
    return ClientInfo(
        ip_address=request.remote,
        user_agent=readable(user_agent[:MAX_USER_AGENT_LENGTH]) if user_agent else None,
    )


def readable(header_value: str) -> str:
    """A header value as text that any store or log takes: bytes that were not UTF-8 (kept by
    the HTTP parser as lone surrogates) and control characters become U+FFFD."""
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
    body = await read_string_fields(request, LOGIN_FIELDS)
    service = request.app[auth_service_key]
    tokens = await service.login(body["username"], body["password"], client_of(request))
    return _token_response(tokens)


async def refresh(request: web.Request) -> web.Response:
    body = await read_string_fields(request, REFRESH_FIELDS)
    tokens = await request.app[auth_service_key].refresh(body["refresh_token"], client_of(request))
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


def _audit_json(entry: AuditEntry) -> dict[str, Any]:
    def text(value: UUID | None) -> str | None:
        return None if value is None else str(value)

    return {
        "log_id": str(entry.log_id),
        "user_id": text(entry.user_id),
        "vehicle_id": text(entry.vehicle_id),
        "command_id": text(entry.command_id),
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": text(entry.entity_id),
        "details": entry.details,
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "timestamp": entry.timestamp.isoformat(),
    }


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
    return web.json_response(
        page_body(
            "audit_logs",
            [_audit_json(e) for e in page.items],
            total=page.total,
            limit=query.limit,
            offset=query.offset,
        )
    )
