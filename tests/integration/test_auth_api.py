"""The auth API of SPEC §3 on both stores (memory, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jose import jwt

from db.events import InProcessBus
from db.repositories import Store
from tests.support.api import PASSWORDS, Backend, bearer, seed_users
from web.app import create_app
from web.auth.guards import current_user, ensure_visible, owner_filter, require_role
from web.config import Config

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
OTHER_SECRET = "not-the-server-secret-" + "q" * 40


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
async def users(store: Store, config: Config) -> dict[str, UUID]:
    return await seed_users(store, config)


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, users: dict[str, UUID]) -> Client:
    return await make_client(store=backend.store, bus=backend.bus)


async def login(client: Client, name: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name]}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def me_status(client: Client, token: str) -> int:
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    if response.status == 401:
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return response.status


async def refresh(client: Client, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def problem_without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def test_login_returns_a_token_pair(client: Client, config: Config) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
    )

    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == config.auth.access_ttl_s
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["username"] == "alice" and claims["role"] == "engineer"
    assert claims["type"] == "access"


async def test_me_describes_the_caller(client: Client, users: dict[str, UUID]) -> None:
    tokens = await login(client, "alice")

    response = await client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))

    assert response.status == 200
    assert await response.json() == {
        "user_id": str(users["alice"]),
        "username": "alice",
        "role": "engineer",
        "email": "alice@example.test",
    }


async def test_unknown_user_and_wrong_password_get_the_same_401(client: Client) -> None:
    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "not-her-password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "mallory", "password": "not-her-password"}
    )

    assert wrong.status == unknown.status == 401
    assert wrong.content_type == unknown.content_type == "application/problem+json"
    wrong_body, unknown_body = await wrong.json(), await unknown.json()
    assert problem_without_ids(wrong_body) == problem_without_ids(unknown_body)
    assert wrong_body["code"] == "invalid_credentials"
    assert set(wrong.headers) - {"Date", "X-Request-ID"} == set(unknown.headers) - {
        "Date",
        "X-Request-ID",
    }


@pytest.mark.parametrize(
    ("data", "content_type", "status", "fields"),
    [
        (b"{not json", "application/json", 400, None),
        (b"", "application/json", 400, None),
        (b'["alice", "pw"]', "application/json", 422, ["(body)"]),
        (b'{"username": "alice"}', "application/json", 422, ["password"]),
        (b'{"username": "alice", "password": 7}', "application/json", 422, ["password"]),
        (b'{"username": "", "password": "x"}', "application/json", 422, ["username"]),
        (
            b'{"username": "alice", "password": "x", "role": "admin"}',
            "application/json",
            422,
            ["role"],
        ),
        (b'{"username": "alice", "password": "x"}', "text/plain", 415, None),
    ],
)
async def test_login_bodies_are_validated_strictly(
    client: Client, data: bytes, content_type: str, status: int, fields: list[str] | None
) -> None:
    response = await client.post(
        "/api/v1/auth/login", data=data, headers={"Content-Type": content_type}
    )

    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    if fields is not None:
        assert [e["field"] for e in body["errors"]] == fields


async def test_everything_under_api_v1_needs_a_token_but_the_public_paths(
    client: Client,
) -> None:
    for path in ("/api/v1/auth/me", "/api/v1/vehicles", "/api/v1/anything", "/api/v1/audit-logs"):
        response = await client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await response.json())["code"] == "not_authenticated"
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 200
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"})).status == 401


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _resigned(claims: dict[str, Any], secret: str, **changes: Any) -> str:
    document = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    return jwt.encode(document, secret, algorithm="HS256")


ATTACKS: dict[str, Callable[[dict[str, Any], str, str], str]] = {
    "alg-none": lambda c, s, t: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(c)}.",
    "alg-none-no-dot": lambda c, s, t: f"{_b64({'alg': 'none'})}.{_b64(c)}",
    "other-key": lambda c, s, t: _resigned(c, OTHER_SECRET),
    "tampered-role": lambda c, s, t: ".".join(
        [t.split(".")[0], _b64({**c, "role": "admin"}), t.split(".")[2]]
    ),
    "expired": lambda c, s, t: _resigned(
        c, s, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "missing-exp": lambda c, s, t: _resigned(c, s, exp=None),
    "missing-iat": lambda c, s, t: _resigned(c, s, iat=None),
    "missing-sub": lambda c, s, t: _resigned(c, s, sub=None),
    "missing-type": lambda c, s, t: _resigned(c, s, type=None),
    "missing-aud": lambda c, s, t: _resigned(c, s, aud=None),
    "wrong-aud": lambda c, s, t: _resigned(c, s, aud="another-api"),
    "wrong-iss": lambda c, s, t: _resigned(c, s, iss="someone-else"),
    "hs512": lambda c, s, t: jwt.encode(c, s, algorithm="HS512"),
    "not-a-jwt": lambda c, s, t: "definitely-not-a-token",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_forged_and_broken_access_tokens_get_401(
    client: Client, config: Config, attack: str
) -> None:
    real = (await login(client, "vera"))["access_token"]
    assert config.auth.jwt_secret is not None
    token = ATTACKS[attack](jwt.get_unverified_claims(real), config.auth.jwt_secret, real)

    response = await client.get("/api/v1/auth/me", headers=bearer(token))

    assert response.status == 401
    assert (await response.json())["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_a_refresh_token_is_not_an_access_token(client: Client) -> None:
    tokens = await login(client, "alice")

    assert await me_status(client, tokens["refresh_token"]) == 401
    assert (await refresh(client, tokens["access_token"])).status == 401


async def test_refresh_rotates_the_pair(client: Client) -> None:
    first = await login(client, "alice")

    response = await refresh(client, first["refresh_token"])
    assert response.status == 200
    second = await response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert await me_status(client, second["access_token"]) == 200

    third = await refresh(client, second["refresh_token"])
    assert third.status == 200


async def test_reusing_a_rotated_refresh_token_kills_the_whole_family(
    client: Client, users: dict[str, UUID]
) -> None:
    first = await login(client, "alice")
    second = await (await refresh(client, first["refresh_token"])).json()
    third = await (await refresh(client, second["refresh_token"])).json()
    elsewhere = await login(client, "alice")

    reused = await refresh(client, first["refresh_token"])

    assert reused.status == 401
    assert (await reused.json())["code"] == "invalid_refresh_token"
    assert (await refresh(client, third["refresh_token"])).status == 401
    assert await me_status(client, third["access_token"]) == 401
    assert await me_status(client, second["access_token"]) == 401
    assert await me_status(client, first["access_token"]) == 401
    # Another login of the same user is another family and lives on.
    assert await me_status(client, elsewhere["access_token"]) == 200
    assert (await refresh(client, elsewhere["refresh_token"])).status == 200
    admin = await login(client, "root")
    logs = await client.get(
        "/api/v1/audit-logs?action=token_reuse_detected", headers=bearer(admin["access_token"])
    )
    entries = (await logs.json())["audit_logs"]
    assert [(e["user_id"], e["entity_type"]) for e in entries] == [(str(users["alice"]), "session")]


async def test_a_client_that_never_stores_rotated_tokens_stays_signed_in(
    make_client: MakeClient, backend: Backend, users: dict[str, UUID], config: Config
) -> None:
    """The reference web app refreshes with its login token at every expiry and page load."""
    client = await make_client(
        store=backend.store,
        bus=backend.bus,
        auth=attrs.evolve(config.auth, refresh_reuse_grace_s=0),
    )
    tokens = await login(client, "alice")
    handed_out = set()
    for _ in range(5):
        response = await refresh(client, tokens["refresh_token"])
        assert response.status == 200, await response.text()
        pair = await response.json()
        assert await me_status(client, pair["access_token"]) == 200
        handed_out.add(pair["refresh_token"])
    # One successor, handed out again while it is unused.
    assert len(handed_out) == 1
    assert await me_status(client, tokens["access_token"]) == 200


async def test_refreshes_within_the_grace_window_get_the_same_pair(client: Client) -> None:
    tokens = await login(client, "alice")

    answers = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(3)))

    pairs = [await a.json() for a in answers]
    assert all(a.status == 200 for a in answers)
    assert len({(p["access_token"], p["refresh_token"]) for p in pairs}) == 1
    assert (await refresh(client, pairs[0]["refresh_token"])).status == 200


async def test_logout_kills_the_access_token_and_the_session_refresh_tokens(
    client: Client,
) -> None:
    tokens = await login(client, "bob")
    other_session = await login(client, "bob")

    response = await client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))

    assert response.status == 200
    assert await response.json() == {"message": "Successfully logged out"}
    assert (await refresh(client, tokens["refresh_token"])).status == 401
    assert await me_status(client, tokens["access_token"]) == 401
    again = await client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert again.status == 401
    assert await me_status(client, other_session["access_token"]) == 200


async def test_logout_is_seen_by_another_server_process(
    make_client: MakeClient, store: Store, users: dict[str, UUID]
) -> None:
    """Two apps on one store stand for two processes: the second has no cached revocation."""
    first, second = await make_client(store=store), await make_client(store=store)
    tokens = await login(first, "alice")
    assert await me_status(second, tokens["access_token"]) == 200

    await first.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))

    assert await me_status(second, tokens["access_token"]) == 401
    assert (await refresh(second, tokens["refresh_token"])).status == 401


async def test_too_many_failures_for_one_account_get_429_with_retry_after(
    make_client: MakeClient, store: Store, users: dict[str, UUID], config: Config
) -> None:
    client = await make_client(
        store=store, auth=attrs.evolve(config.auth, login_max_failures=3, login_window_s=120)
    )
    for _ in range(3):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "guess"}
        )
        assert response.status == 401

    for password in ("guess", PASSWORDS["alice"]):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": password}
        )
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 120
        assert (await response.json())["code"] == "too_many_login_attempts"

    assert (await login(client, "bob"))["token_type"] == "bearer"


async def test_too_many_failures_from_one_address_get_429(
    make_client: MakeClient, store: Store, users: dict[str, UUID], config: Config
) -> None:
    client = await make_client(
        store=store, auth=attrs.evolve(config.auth, login_max_failures_per_address=4)
    )
    for name in ("u1", "u2", "u3", "u4"):
        response = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": "guess"}
        )
        assert response.status == 401

    response = await client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
    )
    assert response.status == 429
    assert "Retry-After" in response.headers


async def test_a_strangers_failures_do_not_lock_the_owner_out(
    make_client: MakeClient, store: Store, users: dict[str, UUID], config: Config
) -> None:
    client = await make_client(store=store, auth=attrs.evolve(config.auth, login_max_failures=3))
    stranger = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
    statuses = []
    async with stranger:
        for _ in range(10):
            async with stranger.post(
                client.make_url("/api/v1/auth/login"),
                json={"username": "alice", "password": "guess"},
            ) as response:
                statuses.append(response.status)

    # The stranger is slowed down ...
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses
    # ... and the owner, from an address of their own, gets in at once.
    assert (await login(client, "alice"))["token_type"] == "bearer"
    admin = await login(client, "root")
    failures = await client.get(
        "/api/v1/audit-logs?action=user_login_failed", headers=bearer(admin["access_token"])
    )
    assert (await failures.json())["total"] == statuses.count(401)


async def test_a_successful_login_forgets_the_account_failures(
    make_client: MakeClient, store: Store, users: dict[str, UUID], config: Config
) -> None:
    client = await make_client(store=store, auth=attrs.evolve(config.auth, login_max_failures=2))
    await client.post("/api/v1/auth/login", json={"username": "alice", "password": "guess"})
    await login(client, "alice")

    for _ in range(2):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "guess"}
        )
        assert response.status == 401


async def test_audit_log_records_logins_failures_and_logouts(
    client: Client, users: dict[str, UUID]
) -> None:
    tokens = await login(client, "alice")
    await client.post(
        "/api/v1/auth/login",
        json={"username": "alice", "password": "wrong-one"},
        headers={"User-Agent": "audit-test/1.0"},
    )
    await client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    admin = await login(client, "root")

    response = await client.get(
        f"/api/v1/audit-logs?user_id={users['alice']}", headers=bearer(admin["access_token"])
    )

    assert response.status == 200
    body = await response.json()
    assert (body["limit"], body["offset"], body["total"]) == (100, 0, 3)
    actions = [e["action"] for e in body["audit_logs"]]
    assert sorted(actions) == ["user_login", "user_login_failed", "user_logout"]
    failed = next(e for e in body["audit_logs"] if e["action"] == "user_login_failed")
    assert failed["user_agent"] == "audit-test/1.0"
    assert failed["ip_address"] == "127.0.0.1"
    assert failed["details"] == {"username": "alice", "reason": "wrong_password"}
    for entry in body["audit_logs"]:
        assert datetime.fromisoformat(entry["timestamp"]).tzinfo is not None
        assert entry["user_id"] == str(users["alice"])


async def test_audit_log_filters_and_pages(client: Client) -> None:
    for _ in range(3):
        await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    admin = await login(client, "root")
    headers = bearer(admin["access_token"])

    response = await client.get(
        "/api/v1/audit-logs?action=user_login_failed&limit=2&offset=1", headers=headers
    )

    body = await response.json()
    assert (body["limit"], body["offset"], body["total"]) == (2, 1, 3)
    assert len(body["audit_logs"]) == 2
    assert {e["user_id"] for e in body["audit_logs"]} == {None}
    assert {e["details"]["reason"] for e in body["audit_logs"]} == {"unknown_user"}


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=0", ["limit"]),
        ("limit=abc&offset=-1", ["limit", "offset"]),
        ("user_id=nope", ["user_id"]),
    ],
)
async def test_audit_log_queries_are_validated(
    client: Client, query: str, fields: list[str]
) -> None:
    admin = await login(client, "root")

    response = await client.get(
        f"/api/v1/audit-logs?{query}", headers=bearer(admin["access_token"])
    )

    assert response.status == 422
    assert sorted(e["field"] for e in (await response.json())["errors"]) == sorted(fields)


@pytest.mark.parametrize("name", ["alice", "vera"])
async def test_only_admins_read_the_audit_log(client: Client, name: str) -> None:
    tokens = await login(client, name)

    response = await client.get("/api/v1/audit-logs", headers=bearer(tokens["access_token"]))

    assert response.status == 403
    assert (await response.json())["code"] == "forbidden"


async def _guarded_client(
    aiohttp_client: Callable[..., Awaitable[Client]], config: Config, store: Store
) -> Client:
    """The real app plus two test-only routes that use the guards as later handlers will."""

    @require_role("engineer", "admin")
    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"submitted_by": current_user(request).username}, status=202)

    async def read_thing(request: web.Request) -> web.Response:
        owner = UUID(request.match_info["owner"])
        ensure_visible(current_user(request), owner, "command")
        return web.json_response({"owner": str(owner)})

    async def list_things(request: web.Request) -> web.Response:
        only = owner_filter(current_user(request))
        return web.json_response({"user_id": None if only is None else str(only)})

    app = create_app(config, store=store, bus=InProcessBus())
    app.router.add_post("/api/v1/test-only/commands", submit)
    app.router.add_get("/api/v1/test-only/things/{owner}", read_thing)
    app.router.add_get("/api/v1/test-only/things", list_things)
    return await aiohttp_client(app)


async def test_viewers_cannot_post_commands(
    aiohttp_client: Callable[..., Awaitable[Client]],
    config: Config,
    store: Store,
    users: dict[str, UUID],
) -> None:
    client = await _guarded_client(aiohttp_client, config, store)
    path = "/api/v1/test-only/commands"

    viewer = await client.post(path, headers=bearer((await login(client, "vera"))["access_token"]))
    engineer = await client.post(
        path, headers=bearer((await login(client, "alice"))["access_token"])
    )
    admin = await client.post(path, headers=bearer((await login(client, "root"))["access_token"]))
    anonymous = await client.post(path)

    assert viewer.status == 403
    assert viewer.content_type == "application/problem+json"
    assert (await viewer.json())["code"] == "forbidden"
    assert engineer.status == admin.status == 202
    assert await engineer.json() == {"submitted_by": "alice"}
    assert anonymous.status == 401


async def test_engineers_get_404_for_objects_of_others_admins_see_all(
    aiohttp_client: Callable[..., Awaitable[Client]],
    config: Config,
    store: Store,
    users: dict[str, UUID],
) -> None:
    client = await _guarded_client(aiohttp_client, config, store)
    alice = bearer((await login(client, "alice"))["access_token"])
    root = bearer((await login(client, "root"))["access_token"])
    alices_thing = f"/api/v1/test-only/things/{users['alice']}"

    assert (await client.get(alices_thing, headers=alice)).status == 200
    assert (await client.get(alices_thing, headers=root)).status == 200
    hidden = await client.get(f"/api/v1/test-only/things/{users['bob']}", headers=alice)
    assert hidden.status == 404
    assert (await hidden.json())["detail"] == "No command with this id."
    listed = await client.get("/api/v1/test-only/things", headers=alice)
    assert await listed.json() == {"user_id": str(users["alice"])}
    listed = await client.get("/api/v1/test-only/things", headers=root)
    assert await listed.json() == {"user_id": None}
