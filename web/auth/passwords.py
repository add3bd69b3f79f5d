"""argon2id password hashing, run off the event loop with bounded concurrency."""

from __future__ import annotations

import asyncio
import os

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from web.config import AuthConfig

MAX_PASSWORD_LENGTH = 1024
MIN_NEW_PASSWORD_LENGTH = 8


class PasswordHasher:
    """Each hash costs `memory_kib` of RAM for a moment, so at most one per core runs at once."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._slots: asyncio.Semaphore | None = None
        self._decoy_hash: str | None = None

    @classmethod
    def from_config(cls, auth: AuthConfig) -> PasswordHasher:
        return cls(
            time_cost=auth.password_time_cost,
            memory_kib=auth.password_memory_kib,
            parallelism=auth.password_parallelism,
        )

    def hash_blocking(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify_blocking(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(self.hash_blocking, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slot():
            return await asyncio.to_thread(self.verify_blocking, password_hash, password)

    async def prepare_decoy(self) -> None:
        """Hashes a random password once, at start-up, for `verify_decoy`."""
        if self._decoy_hash is None:
            self._decoy_hash = await self.hash(os.urandom(16).hex())

    async def verify_decoy(self, password: str) -> bool:
        """Spends the time a real check takes, so an unknown user answers as slowly as a known
        one; it never matches (the decoy's password was random and is gone)."""
        await self.prepare_decoy()
        assert self._decoy_hash is not None
        return await self.verify(self._decoy_hash, password)

    def _slot(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        return self._slots
