"""The dashboard keeps its session alive: the access token is refreshed before it expires,
with the rotated refresh token, and the page goes on working past the first token's end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.conftest import ADMIN_PASSWORD, sign_in
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ACCESS_TTL_S = 3


@pytest.fixture
async def server() -> AsyncIterator[ServerProcess]:
    env = {"SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD, "SOVD_ACCESS_TTL_S": str(ACCESS_TTL_S)}
    server = await ServerProcess(env=env).start()
    try:
        yield server
    finally:
        await server.stop()


def answered(path: str) -> Any:
    return lambda response: response.url.endswith(path) and response.status == 200


async def test_the_access_token_is_refreshed_before_it_expires(
    page: Any, server: ServerProcess
) -> None:
    refreshes = []
    page.on("request", lambda r: refreshes.append(r) if r.url.endswith("/auth/refresh") else None)
    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)

    for _ in range(3):  # each refresh rotates the pair; the next one uses the new token
        async with page.expect_response(answered("/api/v1/auth/refresh"), timeout=10_000):
            pass
    async with page.expect_response(answered("/api/v1/stats"), timeout=5_000):
        pass

    tokens = [request.post_data_json["refresh_token"] for request in refreshes[:3]]
    assert len(set(tokens)) == 3
    assert await page.locator("#fleet-view").is_visible()
    assert await page.locator("#toast").text_content() == ""
