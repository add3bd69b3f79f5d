from __future__ import annotations

from web.auth.passwords import PasswordHasher
from web.config import AuthConfig


async def test_a_hash_verifies_its_password_only(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")

    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert await hasher.verify(stored, "correct horse battery")
    assert not await hasher.verify(stored, "correct horse battery ")
    assert not await hasher.verify(stored, "")


async def test_the_same_password_hashes_differently_each_time(hasher: PasswordHasher) -> None:
    assert await hasher.hash("pw-123456") != await hasher.hash("pw-123456")


async def test_a_damaged_hash_never_verifies(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("not-a-hash", "anything")
    assert not await hasher.verify("$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB", "anything")


async def test_the_decoy_check_takes_any_password_and_matches_none(
    hasher: PasswordHasher,
) -> None:
    await hasher.prepare_decoy()
    for password in ("whatever", "", "x" * 1000, "ünïcode"):
        assert await hasher.verify_decoy(password) is False


def test_production_defaults_are_memory_hard() -> None:
    auth = AuthConfig()
    # OWASP's floor for argon2id is 19 MiB with t=2; the defaults are RFC 9106's low-memory one.
    assert auth.password_memory_kib >= 64 * 1024
    assert auth.password_time_cost >= 3
    assert (
        PasswordHasher.from_config(auth)
        .hash_blocking("x")
        .startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    )
