"""Authentication and authorization (SPEC §3 "Auth").

For handlers: everything under /api/v1 is authenticated by the auth middleware, so
`current_user(request)` (or `request[current_user_key]`) is the caller. Guard roles with
`@require_role("engineer", "admin")`, objects with `ensure_visible(user, owner_id, "command")`,
list queries with `owner_filter(user)`, and WebSockets with `accept_websocket(request)`.
"""

from web.auth.guards import (
    auth_service_key,
    authenticate_request,
    current_user,
    current_user_key,
    ensure_role,
    ensure_visible,
    not_found,
    owner_filter,
    require_role,
)
from web.auth.service import AuthenticatedUser, AuthService, ClientInfo
from web.auth.setup import setup_auth
from web.auth.websocket import accept_websocket

__all__ = [
    "AuthService",
    "AuthenticatedUser",
    "ClientInfo",
    "accept_websocket",
    "auth_service_key",
    "authenticate_request",
    "current_user",
    "current_user_key",
    "ensure_role",
    "ensure_visible",
    "not_found",
    "owner_filter",
    "require_role",
    "setup_auth",
]
