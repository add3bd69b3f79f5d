from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from jose import jwt

from web.auth.tokens import InvalidToken, TokenCodec, refresh_token_digest

SECRET = "unit-test-secret-" + "k" * 40
OTHER_SECRET = "another-secret-" + "z" * 40
USER_ID = UUID("00000000-0000-4000-8000-000000000001")
SESSION_ID = UUID("00000000-0000-4000-8000-0000000000aa")


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(
        secret=SECRET,
        issuer="sovd-sim",
        audience="sovd-sim-api",
        access_ttl_s=900,
        refresh_ttl_s=3600,
    )


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def access_claims(codec: TokenCodec) -> dict[str, Any]:
    token = codec.mint_access(
        user_id=USER_ID, username="alice", role="engineer", session_id=SESSION_ID
    )
    return jwt.get_unverified_claims(token)


def test_an_access_token_round_trips(codec: TokenCodec) -> None:
    token = codec.mint_access(
        user_id=USER_ID, username="alice", role="engineer", session_id=SESSION_ID
    )
    user = codec.verify_access(token).user

    assert (user.user_id, user.username, user.role) == (USER_ID, "alice", "engineer")
    assert user.session_id == SESSION_ID
    assert user.log_id == str(USER_ID)
    raw = jwt.get_unverified_claims(token)
    assert set(raw) == {
        "sub",
        "user_id",
        "username",
        "role",
        "type",
        "iat",
        "exp",
        "jti",
        "iss",
        "aud",
        "sid",
    }
    assert raw["type"] == "access"
    assert raw["exp"] - raw["iat"] == 900
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_every_token_gets_its_own_id(codec: TokenCodec) -> None:
    mint = lambda: codec.mint_refresh(user_id=USER_ID, session_id=SESSION_ID, now=1_700_000_000)  # noqa: E731
    assert mint() != mint()


def test_a_refresh_token_round_trips_and_says_refresh(codec: TokenCodec) -> None:
    token = codec.mint_refresh(user_id=USER_ID, session_id=SESSION_ID)
    claims = codec.verify_refresh(token)

    assert (claims.user_id, claims.session_id) == (USER_ID, SESSION_ID)
    assert jwt.get_unverified_claims(token)["type"] == "refresh"


def _without(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda claims: {k: v for k, v in claims.items() if k != name}


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda claims: {**claims, **changes}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_without("exp"), id="missing-exp"),
        pytest.param(_without("iat"), id="missing-iat"),
        pytest.param(_without("sub"), id="missing-sub"),
        pytest.param(_without("type"), id="missing-type"),
        pytest.param(_without("aud"), id="missing-aud"),
        pytest.param(_without("iss"), id="missing-iss"),
        pytest.param(_without("jti"), id="missing-jti"),
        pytest.param(_without("sid"), id="missing-sid"),
        pytest.param(_with(aud="someone-else"), id="wrong-aud"),
        pytest.param(_with(aud=["someone-else"]), id="wrong-aud-list"),
        pytest.param(_with(iss="evil"), id="wrong-iss"),
        pytest.param(_with(type="refresh"), id="refresh-type"),
        pytest.param(_with(role="superuser"), id="unknown-role"),
        pytest.param(_with(sub="not-a-uuid", user_id="not-a-uuid"), id="bad-sub"),
        pytest.param(_with(user_id=str(uuid4())), id="user-id-differs-from-sub"),
        pytest.param(_with(exp=int(time.time()) - 5), id="expired"),
        pytest.param(_with(exp=True), id="boolean-exp"),
        pytest.param(_with(sid=None), id="null-sid"),
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_refused(
    codec: TokenCodec, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    token = codec.encode(change(access_claims(codec)))

    with pytest.raises(InvalidToken):
        codec.verify_access(token)


def test_python_jose_alone_would_accept_a_token_without_aud(codec: TokenCodec) -> None:
    """Why the codec checks `aud` itself."""
    token = codec.encode(_without("aud")(access_claims(codec)))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="sovd-sim-api")

    assert "aud" not in claims
    with pytest.raises(InvalidToken):
        codec.verify_access(token)


def test_an_expired_token_says_so(codec: TokenCodec) -> None:
    past = int(time.time()) - 3600
    token = codec.mint_access(
        user_id=USER_ID, username="alice", role="viewer", session_id=SESSION_ID, now=past
    )

    with pytest.raises(InvalidToken) as caught:
        codec.verify_access(token)
    assert caught.value.reason == "expired"


def test_alg_none_is_refused(codec: TokenCodec) -> None:
    claims = access_claims(codec)
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."

    with pytest.raises(InvalidToken):
        codec.verify_access(token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(codec: TokenCodec, algorithm: str) -> None:
    token = jwt.encode(access_claims(codec), SECRET, algorithm=algorithm)

    with pytest.raises(InvalidToken):
        codec.verify_access(token)


def test_a_token_signed_with_another_key_is_refused(codec: TokenCodec) -> None:
    token = jwt.encode(access_claims(codec), OTHER_SECRET, algorithm="HS256")

    with pytest.raises(InvalidToken):
        codec.verify_access(token)


def test_a_tampered_payload_is_refused(codec: TokenCodec) -> None:
    token = codec.mint_access(
        user_id=USER_ID, username="alice", role="viewer", session_id=SESSION_ID
    )
    header, _, signature = token.split(".")
    forged = {**jwt.get_unverified_claims(token), "role": "admin"}

    with pytest.raises(InvalidToken):
        codec.verify_access(f"{header}.{b64(forged)}.{signature}")


def test_a_refresh_token_is_no_access_token_and_back(codec: TokenCodec) -> None:
    refresh = codec.mint_refresh(user_id=USER_ID, session_id=SESSION_ID)
    access = codec.mint_access(
        user_id=USER_ID, username="alice", role="viewer", session_id=SESSION_ID
    )

    with pytest.raises(InvalidToken) as caught:
        codec.verify_access(refresh)
    assert caught.value.reason == "wrong_type"
    with pytest.raises(InvalidToken):
        codec.verify_refresh(access)


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "....", "é.é.é", "x" * 5000, "Bearer x.y.z"]
)
def test_garbage_is_refused_without_other_errors(codec: TokenCodec, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec.verify_access(garbage)


def test_refresh_digests_are_stable_and_hide_the_token() -> None:
    digest = refresh_token_digest("a.b.c")

    assert digest == refresh_token_digest("a.b.c")
    assert digest != refresh_token_digest("a.b.d")
    assert "a.b.c" not in digest and len(digest) == 64


def test_a_verified_token_is_not_verified_again_until_it_expires(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = codec.mint_access(
        user_id=USER_ID, username="alice", role="engineer", session_id=SESSION_ID
    )
    first = codec.verify_access(token)
    monkeypatch.setattr(codec, "_decode", lambda *_: pytest.fail("verified twice"))
    assert codec.verify_access(token) is first

    later = first.expires_at + 1
    monkeypatch.setattr("web.auth.tokens.time.time", lambda: later)
    with pytest.raises(InvalidToken) as refused:
        codec.verify_access(token)
    assert refused.value.reason == "expired"
