"""Authentication and authorization (SPEC §3 "Auth").

Everything under /api/v1 is authenticated by `guards.auth_middleware`, so
`guards.current_user(request)` is the caller. Guard roles with `@require_role("engineer",
"admin")`, objects with `ensure_visible(user, owner_id, "command")`, list queries with
`owner_filter(user)`, and WebSockets with `websocket.accept_websocket(request)`.
"""
