"""JWT minting and verification (HS256, RFC 8725). The only module that imports python-jose."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal, cast
from uuid import UUID

from attrs import field, frozen
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTError

from sovd.records import ROLES, Role
from web.config import AuthConfig

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
REQUIRED_CLAIMS = ("exp", "iat", "sub", "type", "iss", "aud", "jti", "sid")

TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """`reason` is a fixed word, safe to log; the token itself never goes into the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@frozen
class AuthenticatedUser:
    """Who sent the request, as its access token says; `session_id` is the login family.
    `log_id`: the user id as text, made once (requests bind it to their log lines)."""

    user_id: UUID
    username: str
    role: Role
    session_id: UUID
    token_id: str
    log_id: str = field(eq=False, repr=False)

    @log_id.default
    def _user_id_text(self) -> str:
        return str(self.user_id)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@frozen
class AccessClaims:
    """A verified access token: who it names (one object for every request that repeats the
    token) and when it expires."""

    user: AuthenticatedUser
    expires_at: int


@frozen
class RefreshClaims:
    user_id: UUID
    session_id: UUID
    token_id: str
    expires_at: int


def refresh_token_digest(token: str) -> str:
    """What the sessions table keeps: refresh tokens are random enough for a plain SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


VERIFIED_TOKENS_KEPT = 10_000


class TokenCodec:
    def __init__(
        self, *, secret: str, issuer: str, audience: str, access_ttl_s: int, refresh_ttl_s: int
    ) -> None:
        self._secret = secret
        self.issuer, self.audience = issuer, audience
        self.access_ttl_s, self.refresh_ttl_s = access_ttl_s, refresh_ttl_s
        self._verified: dict[str, AccessClaims] = {}

    @classmethod
    def from_config(cls, auth: AuthConfig) -> TokenCodec:
        if not auth.jwt_secret:
            raise ValueError("auth.jwt_secret is not set")
        return cls(
            secret=auth.jwt_secret,
            issuer=auth.issuer,
            audience=auth.audience,
            access_ttl_s=auth.access_ttl_s,
            refresh_ttl_s=auth.refresh_ttl_s,
        )

    def encode(self, claims: Mapping[str, Any]) -> str:
        """Signs any claims as they are; tests use it to mint expired or incomplete tokens."""
        token: str = jwt.encode(dict(claims), self._secret, algorithm=ALGORITHM)
        return token

    def _registered(
        self,
        kind: TokenType,
        user_id: UUID,
        session_id: UUID,
        now: int,
        ttl: int,
        token_id: str | None,
    ) -> dict[str, Any]:
        return {
            "sub": str(user_id),
            "type": kind,
            "sid": str(session_id),
            "jti": token_id or secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + ttl,
            "iss": self.issuer,
            "aud": self.audience,
        }

    def mint_access(
        self,
        *,
        user_id: UUID,
        username: str,
        role: Role,
        session_id: UUID,
        now: int | None = None,
        token_id: str | None = None,
    ) -> str:
        """`token_id` and `now` given, the same token comes out every time (HS256 signs
        deterministically): how a refresh answered twice hands out the same pair."""
        issued = int(time.time()) if now is None else now
        claims = self._registered(
            "access", user_id, session_id, issued, self.access_ttl_s, token_id
        )
        claims.update(user_id=str(user_id), username=username, role=role)
        return self.encode(claims)

    def mint_refresh(
        self,
        *,
        user_id: UUID,
        session_id: UUID,
        now: int | None = None,
        token_id: str | None = None,
    ) -> str:
        issued = int(time.time()) if now is None else now
        return self.encode(
            self._registered("refresh", user_id, session_id, issued, self.refresh_ttl_s, token_id)
        )

    def verify_access(self, token: str) -> AccessClaims:
        """Verifies a token once; repeats of a verified token only re-check its expiry.

        A client sends the same access token with every request, and the signature check
        is the dearest part of a request. Revocation is not cached: callers check it."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                return known
            del self._verified[token]
            raise InvalidToken("expired")
        verified = self._verify_access(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._forget_expired_or_oldest()
        self._verified[token] = verified
        return verified

    def _forget_expired_or_oldest(self) -> None:
        now = time.time()
        expired = [t for t, claims in self._verified.items() if claims.expires_at <= now]
        for token in expired or list(self._verified)[: VERIFIED_TOKENS_KEPT // 10]:
            del self._verified[token]

    def _verify_access(self, token: str) -> AccessClaims:
        claims = self._decode(token, "access")
        user_id = _uuid(claims["sub"])
        role = claims.get("role")
        username = claims.get("username")
        if claims.get("user_id") != str(user_id) or role not in ROLES:
            raise InvalidToken("claims")
        if not isinstance(username, str) or not username:
            raise InvalidToken("claims")
        user = AuthenticatedUser(
            user_id=user_id,
            username=username,
            role=cast(Role, role),
            session_id=_uuid(claims["sid"]),
            token_id=claims["jti"],
        )
        return AccessClaims(user, claims["exp"])

    def verify_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        return RefreshClaims(
            user_id=_uuid(claims["sub"]),
            session_id=_uuid(claims["sid"]),
            token_id=claims["jti"],
            expires_at=claims["exp"],
        )

    def _decode(self, token: str, expected: TokenType) -> dict[str, Any]:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{name}": True for name in REQUIRED_CLAIMS},
            )
        except ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except (JWTError, ValueError, TypeError, KeyError, AttributeError):
            raise InvalidToken("invalid") from None
        # Checked here again rather than trusted to the library: python-jose lets a token
        # without `aud` through when an audience is expected.
        if claims.get("aud") != self.audience or claims.get("iss") != self.issuer:
            raise InvalidToken("claims")
        if not all(type(claims.get(name)) is int for name in ("exp", "iat")):
            raise InvalidToken("claims")
        if not all(isinstance(claims.get(name), str) for name in ("sub", "sid", "jti")):
            raise InvalidToken("claims")
        if claims.get("type") != expected:
            raise InvalidToken("wrong_type")
        return claims


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidToken("claims") from None
