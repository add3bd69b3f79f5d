from __future__ import annotations

from uuid import uuid4

import pytest
from aiohttp.test_utils import make_mocked_request

from web.auth.guards import (
    bearer_token,
    ensure_role,
    ensure_visible,
    needs_authentication,
    owner_filter,
    request_token,
    require_role,
)
from web.auth.tokens import AuthenticatedUser
from web.problems import ApiError


def user(role: str) -> AuthenticatedUser:
    return AuthenticatedUser(
        user_id=uuid4(),
        username=role,
        role=role,
        session_id=uuid4(),
        token_id="t",  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("", None),
    ],
)
def test_bearer_token_parsing(header: str, token: str | None) -> None:
    request = make_mocked_request("GET", "/api/v1/x", headers={"Authorization": header})
    assert bearer_token(request) == token


EVENTS = "/vehicles/v/sovd/v1/components/c/cyclic-subscriptions/s/events"


@pytest.mark.parametrize(
    ("method", "path", "headers", "token"),
    [
        ("GET", f"{EVENTS}?token=abc", {}, "abc"),
        ("GET", f"{EVENTS}?token=abc", {"Authorization": "Bearer xyz"}, "xyz"),
        ("GET", f"{EVENTS}?token=", {}, None),
        ("POST", f"{EVENTS}?token=abc", {}, None),
        ("GET", f"{EVENTS}/more?token=abc", {}, None),
        ("GET", "/vehicles/v/sovd/v1/components/c/cyclic-subscriptions/s?token=abc", {}, None),
        ("GET", "/vehicles/v/sovd/v1/components/c/data/vin?token=abc", {}, None),
        ("GET", "/api/v1/commands?token=abc", {}, None),
    ],
)
def test_query_token_only_on_event_streams(
    method: str, path: str, headers: dict[str, str], token: str | None
) -> None:
    assert request_token(make_mocked_request(method, path, headers=headers)) == token


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/api/v1/vehicles", True),
        ("POST", "/api/v1/commands", True),
        ("GET", "/api/v1", True),
        ("GET", "/api/v1/auth/me", True),
        ("POST", "/api/v1/auth/logout", True),
        ("POST", "/api/v1/auth/login", False),
        ("POST", "/api/v1/auth/refresh", False),
        ("GET", "/api/v1/openapi.json", False),
        ("GET", "/api/v1/docs", False),
        ("OPTIONS", "/api/v1/commands", False),
        ("GET", "/healthz", False),
        ("GET", "/metrics", False),
        ("GET", "/api/v10/x", False),
    ],
)
def test_which_paths_need_a_token(method: str, path: str, needed: bool) -> None:
    assert needs_authentication(make_mocked_request(method, path)) is needed


def test_roles_are_checked_exactly() -> None:
    ensure_role(user("engineer"), "engineer", "admin")
    with pytest.raises(ApiError) as caught:
        ensure_role(user("viewer"), "engineer", "admin")
    assert caught.value.status == 403


def test_require_role_refuses_unknown_roles_when_decorating() -> None:
    with pytest.raises(ValueError, match="roles"):
        require_role("enginer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="roles"):
        require_role()


def test_owners_and_admins_see_an_object_others_get_404() -> None:
    engineer, other, admin = user("engineer"), user("engineer"), user("admin")

    ensure_visible(engineer, engineer.user_id, "command")
    ensure_visible(admin, engineer.user_id, "command")
    with pytest.raises(ApiError) as hidden:
        ensure_visible(other, engineer.user_id, "command")
    with pytest.raises(ApiError) as missing:
        ensure_visible(admin, None, "command")
    assert hidden.value.status == missing.value.status == 404
    assert hidden.value.detail == missing.value.detail == "No command with this id."


def test_owner_filter_limits_all_but_admins() -> None:
    engineer, admin = user("engineer"), user("admin")

    assert owner_filter(engineer) == engineer.user_id
    assert owner_filter(admin) is None
