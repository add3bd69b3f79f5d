from __future__ import annotations

import pytest

from web.auth.passwords import PasswordHasher
from web.config import Config


@pytest.fixture
def hasher(config: Config) -> PasswordHasher:
    return PasswordHasher.from_config(config.auth)
