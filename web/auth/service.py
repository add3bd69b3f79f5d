"""Login, refresh rotation with reuse detection, logout and access-token authentication."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import structlog
from attrs import frozen

from db.coalesce import CoalescedLookups
from db.repositories import Store
from sovd.records import AuditEntry, RefreshSession, User, utc_now
from web.auth.passwords import PasswordHasher
from web.auth.throttle import LoginThrottle, LoginThrottled
from web.auth.tokens import AuthenticatedUser, InvalidToken, TokenCodec, refresh_token_digest
from web.problems import ApiError

log = structlog.get_logger(__name__)

MAX_CACHED_REVOCATIONS = 100_000
_SUCCESSORS = UUID("6f1f3c0e-8a51-4d0f-9a7e-2b7c5d1e4a90")


def successor_of(session_id: UUID) -> UUID:
    """The id of the refresh session a rotation of `session_id` creates; derived, so every
    process finds it without storing the link."""
    return uuid5(_SUCCESSORS, str(session_id))


@frozen
class ClientInfo:
    ip_address: str | None = None
    user_agent: str | None = None


@frozen
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def invalid_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "Invalid username or password.")


def invalid_access_token() -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        "The access token is invalid, expired or revoked.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def invalid_refresh_token() -> ApiError:
    return ApiError(
        401, "invalid_refresh_token", "The refresh token is invalid, expired or revoked."
    )


def too_many_attempts(retry_after_s: int) -> ApiError:
    return ApiError(
        429,
        "too_many_login_attempts",
        "Too many failed logins; retry later.",
        headers={"Retry-After": str(retry_after_s)},
    )


class RevokedSessions:
    """Families this process saw revoked, kept as long as their access tokens can live, so a
    token that logout killed is refused without asking the store."""

    def __init__(
        self,
        keep_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHED_REVOCATIONS,
    ) -> None:
        self._keep_s, self._clock, self._max_entries = keep_s, clock, max_entries
        self._until: dict[UUID, float] = {}

    def add(self, session_id: UUID) -> None:
        now = self._clock()
        self._until.pop(session_id, None)
        self._until[session_id] = now + self._keep_s
        while self._until:
            oldest, until = next(iter(self._until.items()))
            if until > now and len(self._until) <= self._max_entries:
                break
            del self._until[oldest]

    def __contains__(self, session_id: UUID) -> bool:
        until = self._until.get(session_id)
        return until is not None and until > self._clock()


class AuthService:
    def __init__(
        self,
        store: Store,
        codec: TokenCodec,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        *,
        now: Callable[[], datetime] = utc_now,
        reuse_grace_s: float = 5.0,
    ) -> None:
        self._store, self._codec, self._throttle = store, codec, throttle
        self._reuse_grace_s = reuse_grace_s
        self.hasher = hasher
        self._now = now
        self._revoked = RevokedSessions(keep_s=codec.access_ttl_s + 60)
        # Whether a login family was revoked, asked for many requests in one query.
        self._revocations: CoalescedLookups[UUID, bool] = CoalescedLookups(
            self._revoked_families, missing=False
        )

    async def _revoked_families(self, family_ids: Sequence[UUID]) -> dict[UUID, bool]:
        return dict.fromkeys(await self._store.sessions.revoked_families(family_ids), True)

    async def login(self, username: str, password: str, client: ClientInfo) -> TokenPair:
        try:
            attempt = self._throttle.begin_attempt(username, client.ip_address or "unknown")
        except LoginThrottled as exc:
            log.info("login_throttled", scope=exc.scope, retry_after_s=exc.retry_after_s)
            raise too_many_attempts(exc.retry_after_s) from None
        user = await self._store.users.get_by_username(username)
        failure = await self._login_failure(user, password)
        if user is None or failure:
            log.info("login_failed", username=username, reason=failure)
            await self._audit(
                "user_login_failed",
                client,
                user_id=user.user_id if user is not None else None,
                details={"username": username, "reason": failure},
            )
            raise invalid_credentials()
        self._throttle.record_success(attempt)
        family_id = uuid4()
        tokens = await self._open_session(user, family_id=family_id, now=self._now())
        await self._audit(
            "user_login", client, user_id=user.user_id, details={"session_id": str(family_id)}
        )
        log.info(
            "user_logged_in",
            user_id=str(user.user_id),
            username=user.username,
            session_id=str(family_id),
        )
        return tokens

    async def refresh(self, refresh_token: str, client: ClientInfo) -> TokenPair:
        try:
            claims = self._codec.verify_refresh(refresh_token)
        except InvalidToken as exc:
            log.info("refresh_rejected", reason=exc.reason)
            raise invalid_refresh_token() from None
        session = await self._store.sessions.get_by_token_hash(refresh_token_digest(refresh_token))
        if session is None or (session.family_id, session.user_id) != (
            claims.session_id,
            claims.user_id,
        ):
            log.info("refresh_rejected", reason="unknown_session")
            raise invalid_refresh_token()
        if session.revoked_at is not None:
            log.info("refresh_rejected", reason="revoked", session_id=str(session.family_id))
            raise invalid_refresh_token()
        now = self._now()
        if session.expires_at <= now:
            log.info("refresh_rejected", reason="expired", session_id=str(session.family_id))
            raise invalid_refresh_token()
        user = await self._store.users.get(session.user_id)
        if user is None or not user.is_active:
            await self._revoke(session.family_id, now)
            log.info("refresh_rejected", reason="inactive_user", session_id=str(session.family_id))
            raise invalid_refresh_token()
        if session.rotated_at is None and await self._store.sessions.mark_rotated(
            session.session_id, now
        ):
            tokens = await self._open_session(
                user, family_id=session.family_id, now=now, predecessor=session.session_id
            )
            log.info(
                "token_refreshed", user_id=str(user.user_id), session_id=str(session.family_id)
            )
            return tokens
        return await self._refresh_again(user, session, client, now)

    async def _refresh_again(
        self, user: User, session: RefreshSession, client: ClientInfo, now: datetime
    ) -> TokenPair:
        """A token that was rotated already. It stays valid until its successor has been
        used once (clients such as the reference web app never store the rotated token);
        within the grace window the answer is the very pair the first refresh gave. Once
        the successor was used, presenting this one is token theft: the family is revoked."""
        if session.rotated_at is None:  # rotated concurrently: read when
            session = await self._store.sessions.get(session.session_id) or session
        rotated_at = session.rotated_at or now
        successor_id = successor_of(session.session_id)
        successor = await self._store.sessions.get(successor_id)
        if successor is not None and (successor.rotated_at is not None or successor.revoked_at):
            await self._revoke(session.family_id, now)
            log.warning(
                "token_reuse_detected",
                user_id=str(session.user_id),
                session_id=str(session.family_id),
            )
            await self._audit(
                "token_reuse_detected",
                client,
                user_id=session.user_id,
                entity_type="session",
                entity_id=session.family_id,
            )
            raise invalid_refresh_token()
        within_grace = (now - rotated_at).total_seconds() <= self._reuse_grace_s
        tokens = self._mint_pair(
            user,
            session.family_id,
            successor_id,
            refresh_issued=rotated_at,
            access_issued=rotated_at if within_grace else now,
        )
        log.info(
            "token_refreshed_again",
            user_id=str(user.user_id),
            session_id=str(session.family_id),
            within_grace=within_grace,
        )
        return tokens

    async def logout(self, user: AuthenticatedUser, client: ClientInfo) -> None:
        await self._revoke(user.session_id, self._now())
        await self._audit(
            "user_logout",
            client,
            user_id=user.user_id,
            details={"session_id": str(user.session_id)},
        )
        log.info("user_logged_out", user_id=str(user.user_id), session_id=str(user.session_id))

    async def authenticate(self, access_token: str) -> AuthenticatedUser:
        """Verifies an access token and that its login family is still alive: one small query."""
        try:
            claims = self._codec.verify_access(access_token)
        except InvalidToken as exc:
            log.debug("access_token_rejected", reason=exc.reason)
            raise invalid_access_token() from None
        user = claims.user
        if user.session_id in self._revoked:
            raise invalid_access_token()
        if await self._revocations.get(user.session_id):
            self._revoked.add(user.session_id)
            log.debug("access_token_rejected", reason="revoked")
            raise invalid_access_token()
        return user

    async def profile(self, user: AuthenticatedUser) -> User:
        record = await self._store.users.get(user.user_id)
        if record is None or not record.is_active:
            raise invalid_access_token()
        return record

    async def _login_failure(self, user: User | None, password: str) -> str:
        """Why the login fails, "" when it does not; always exactly one password check."""
        if user is None:
            await self.hasher.verify_decoy(password)
            return "unknown_user"
        if not await self.hasher.verify(user.password_hash, password):
            return "wrong_password"
        return "" if user.is_active else "inactive_user"

    async def _open_session(
        self, user: User, *, family_id: UUID, now: datetime, predecessor: UUID | None = None
    ) -> TokenPair:
        """A new refresh session of the family (the successor of `predecessor`, when it is a
        rotation) and the pair that goes with it."""
        session_id = uuid4() if predecessor is None else successor_of(predecessor)
        tokens = self._mint_pair(user, family_id, session_id, refresh_issued=now, access_issued=now)
        await self._store.sessions.add(
            RefreshSession(
                session_id=session_id,
                user_id=user.user_id,
                family_id=family_id,
                refresh_token_hash=refresh_token_digest(tokens.refresh_token),
                created_at=now,
                expires_at=now + timedelta(seconds=self._codec.refresh_ttl_s),
            )
        )
        return tokens

    def _mint_pair(
        self,
        user: User,
        family_id: UUID,
        session_id: UUID,
        *,
        refresh_issued: datetime,
        access_issued: datetime,
    ) -> TokenPair:
        """Token ids come from the session, so minting twice at the same moments gives the
        same tokens: that is how a rotated session's successor is handed out again."""
        refresh_token = self._codec.mint_refresh(
            user_id=user.user_id,
            session_id=family_id,
            now=int(refresh_issued.timestamp()),
            token_id=str(session_id),
        )
        access_at = int(access_issued.timestamp())
        access_token = self._codec.mint_access(
            user_id=user.user_id,
            username=user.username,
            role=user.role,
            session_id=family_id,
            now=access_at,
            token_id=f"{session_id}.{access_at}",
        )
        return TokenPair(access_token, refresh_token, self._codec.access_ttl_s)

    async def _revoke(self, family_id: UUID, now: datetime) -> None:
        self._revoked.add(family_id)
        await self._store.sessions.revoke_family(family_id, now)

    async def _audit(
        self,
        action: str,
        client: ClientInfo,
        *,
        user_id: UUID | None,
        entity_type: str = "user",
        entity_id: UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        entry = AuditEntry(
            log_id=uuid4(),
            action=action,
            entity_type=entity_type,
            timestamp=self._now(),
            user_id=user_id,
            entity_id=entity_id or user_id,
            details=details or {},
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
        await self._store.audit.add_many([entry])
