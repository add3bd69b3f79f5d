"""User accounts: creating them, and the first admin when there is no user at all."""

from __future__ import annotations

import re
import secrets
import sys
from typing import TextIO
from uuid import uuid4

import structlog

from db.repositories import DuplicateKey, Store
from sovd.records import ROLES, Role, User, utc_now
from web.auth.passwords import MAX_PASSWORD_LENGTH, MIN_NEW_PASSWORD_LENGTH, PasswordHasher

log = structlog.get_logger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
BOOTSTRAP_USERNAME = "admin"


class InvalidAccount(ValueError):
    pass


async def create_user(
    store: Store,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    role: Role,
    email: str | None = None,
) -> User:
    """Raises InvalidAccount for a bad name or role, DuplicateKey when the name is taken."""
    if not USERNAME.match(username):
        raise InvalidAccount(
            "username must be 1 to 64 characters from letters, digits and . _ @ + -"
        )
    if role not in ROLES:
        raise InvalidAccount(f"role must be one of {', '.join(ROLES)}")
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidAccount(f"password must be 1 to {MAX_PASSWORD_LENGTH} characters")
    user = User(
        user_id=uuid4(),
        username=username,
        password_hash=await hasher.hash(password),
        role=role,
        email=email,
        created_at=utc_now(),
    )
    await store.users.add(user)
    log.info("user_created", user_id=str(user.user_id), username=username, role=role)
    return user


async def bootstrap_admin(
    store: Store, hasher: PasswordHasher, admin_password: str | None, out: TextIO | None = None
) -> User | None:
    """With no user at all, creates `admin`: with SOVD_ADMIN_PASSWORD, or a random password
    printed once to `out` (stdout), the one secret this program ever shows."""
    if await store.users.count() > 0:
        return None
    password = admin_password or secrets.token_urlsafe(18)
    try:
        user = await create_user(
            store, hasher, username=BOOTSTRAP_USERNAME, password=password, role="admin"
        )
    except DuplicateKey:
        return None  # another process starting at the same time created it
    if admin_password is None:
        print(
            f"\n*** sovd-sim: created user '{BOOTSTRAP_USERNAME}' with password: {password}\n"
            "*** It is shown only this once. Set SOVD_ADMIN_PASSWORD to choose it yourself.\n",
            file=out or sys.stdout,
            flush=True,
        )
    elif len(admin_password) < MIN_NEW_PASSWORD_LENGTH:
        log.warning("admin_password_weak", min_length=MIN_NEW_PASSWORD_LENGTH)
    log.info(
        "admin_bootstrapped",
        user_id=str(user.user_id),
        username=BOOTSTRAP_USERNAME,
        password_source="SOVD_ADMIN_PASSWORD" if admin_password else "generated",
    )
    return user
