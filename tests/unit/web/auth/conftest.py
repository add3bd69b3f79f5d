from __future__ import annotations

import attrs
import pytest

from web.auth.passwords import PasswordHasher
from web.config import Config


def with_cheap_hashing(config: Config) -> Config:
    """Production argon2 costs 64 MiB and ~0.1 s per hash; tests need neither."""
    auth = attrs.evolve(
        config.auth, password_time_cost=1, password_memory_kib=8, password_parallelism=1
    )
    return attrs.evolve(config, auth=auth)


@pytest.fixture
def config(config: Config) -> Config:
    return with_cheap_hashing(config)


@pytest.fixture
def hasher(config: Config) -> PasswordHasher:
    return PasswordHasher.from_config(config.auth)
