from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import attrs
import pytest

from db.memory import MemoryStore
from web.auth.accounts import create_user
from web.auth.passwords import PasswordHasher
from web.auth.service import AuthService, ClientInfo, RevokedSessions
from web.auth.startup import build_auth_service
from web.config import Config
from web.problems import ApiError

CLIENT = ClientInfo(ip_address="192.0.2.7", user_agent="pytest")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def service(config: Config, hasher: PasswordHasher) -> AuthService:
    store = MemoryStore()
    await create_user(store, hasher, username="alice", password="alice-pw-1", role="engineer")
    return build_auth_service(config.auth, store)


def test_revoked_sessions_are_remembered_for_a_while_and_bounded() -> None:
    now = [0.0]
    revoked = RevokedSessions(keep_s=10, clock=lambda: now[0], max_entries=3)
    first, *others = [uuid4() for _ in range(5)]
    revoked.add(first)

    assert first in revoked
    now[0] = 11
    assert first not in revoked
    for session_id in others:
        revoked.add(session_id)
    assert others[-1] in revoked and others[0] not in revoked
    assert len(revoked._until) == 3


async def test_an_expired_refresh_session_is_refused(config: Config, service: AuthService) -> None:
    clock = Clock()
    service._now = clock
    tokens = await service.login("alice", "alice-pw-1", CLIENT)
    clock.now += timedelta(seconds=config.auth.refresh_ttl_s + 1)

    with pytest.raises(ApiError) as caught:
        await service.refresh(tokens.refresh_token, CLIENT)
    assert caught.value.status == 401


async def test_concurrent_refreshes_of_one_token_get_one_pair(service: AuthService) -> None:
    tokens = await service.login("alice", "alice-pw-1", CLIENT)

    outcomes = await asyncio.gather(
        service.refresh(tokens.refresh_token, CLIENT),
        service.refresh(tokens.refresh_token, CLIENT),
    )

    assert outcomes[0] == outcomes[1]
    successor = await service.refresh(outcomes[0].refresh_token, CLIENT)
    # The successor was used: the login token is now a stolen one.
    with pytest.raises(ApiError):
        await service.refresh(tokens.refresh_token, CLIENT)
    with pytest.raises(ApiError):
        await service.authenticate(successor.access_token)


async def test_after_the_grace_window_an_unused_successor_is_handed_out_again(
    service: AuthService,
) -> None:
    clock = Clock()
    service._now = clock
    tokens = await service.login("alice", "alice-pw-1", CLIENT)
    first = await service.refresh(tokens.refresh_token, CLIENT)
    clock.now += timedelta(seconds=60)

    again = await service.refresh(tokens.refresh_token, CLIENT)

    assert again.refresh_token == first.refresh_token
    assert again.access_token != first.access_token


async def test_the_store_is_asked_once_per_authentication_and_not_after_logout(
    service: AuthService,
) -> None:
    tokens = await service.login("alice", "alice-pw-1", CLIENT)
    user = await service.authenticate(tokens.access_token)
    asked: list[object] = []
    sessions = service._store.sessions
    real = sessions.revoked_families

    async def counting(family_ids: Any) -> set[Any]:
        asked.append(list(family_ids))
        return await real(family_ids)

    sessions.revoked_families = counting  # type: ignore[method-assign]
    await service.authenticate(tokens.access_token)
    assert asked == [[user.session_id]]

    await service.logout(user, CLIENT)
    with pytest.raises(ApiError):
        await service.authenticate(tokens.access_token)
    assert len(asked) == 1


async def test_concurrent_authentications_share_one_revocation_lookup(
    service: AuthService,
) -> None:
    first = await service.login("alice", "alice-pw-1", CLIENT)
    second = await service.login("alice", "alice-pw-1", CLIENT)
    asked: list[list[Any]] = []
    sessions = service._store.sessions
    real = sessions.revoked_families

    async def counting(family_ids: Any) -> set[Any]:
        asked.append(sorted(family_ids))
        return await real(family_ids)

    sessions.revoked_families = counting  # type: ignore[method-assign]
    tokens = [first.access_token, second.access_token] * 5
    users = await asyncio.gather(*(service.authenticate(t) for t in tokens))
    assert len(asked) == 1
    assert asked[0] == sorted({u.session_id for u in users})
    victim = users[0]
    await service.logout(victim, CLIENT)
    results = await asyncio.gather(
        *(service.authenticate(t) for t in tokens), return_exceptions=True
    )
    assert [isinstance(r, ApiError) for r in results] == [True, False] * 5


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "alice-pw-1"), ("alice", "wrong-password"), ("nobody", "alice-pw-1")],
)
async def test_every_login_costs_exactly_one_password_check(
    service: AuthService, monkeypatch: pytest.MonkeyPatch, username: str, password: str
) -> None:
    """Known user, wrong password and unknown user do the same work, so time tells nothing."""
    await service.hasher.prepare_decoy()
    checked: list[str] = []
    real = service.hasher.verify_blocking

    def counting(password_hash: str, candidate: str) -> bool:
        checked.append(password_hash)
        return real(password_hash, candidate)

    monkeypatch.setattr(service.hasher, "verify_blocking", counting)
    if password == "alice-pw-1" and username == "alice":
        await service.login(username, password, CLIENT)
    else:
        with pytest.raises(ApiError, match="Invalid username or password"):
            await service.login(username, password, CLIENT)
    assert len(checked) == 1
    assert checked[0].startswith("$argon2id$")


async def test_an_inactive_user_cannot_log_in(service: AuthService) -> None:
    alice = await service._store.users.get_by_username("alice")
    assert alice is not None
    inactive = attrs.evolve(alice, user_id=uuid4(), username="ivan", is_active=False)
    await service._store.users.add(inactive)

    with pytest.raises(ApiError, match="Invalid username or password"):
        await service.login("ivan", "alice-pw-1", CLIENT)
