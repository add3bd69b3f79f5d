"""The admin page's cluster view against cluster nodes on PostgreSQL and Redis: who is live,
who owns which partition, refreshed while the page is shown."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from yarl import URL

from tests.browser.conftest import ADMIN_PASSWORD, sign_in
from tests.conftest import fresh_database
from tests.support.cluster import forget_cluster
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 8


@pytest.fixture
async def cluster_env(redis_url: str) -> AsyncIterator[dict[str, str]]:
    # A Redis database of this run's own, as in tests/e2e/test_cluster.py.
    redis_url = str(URL(redis_url).with_path(f"/{os.getpid() % 12 + 1}"))
    async with fresh_database() as dsn:
        await forget_cluster(redis_url)
        yield {
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "JWT_SECRET": "browser-cluster-secret-" + "k" * 40,
            "SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SOVD_CLUSTER_PARTITIONS": str(PARTITIONS),
            "SOVD_CLUSTER_LEASE_MS": "1500",
        }
        await forget_cluster(redis_url)


@pytest.fixture
async def server(cluster_env: dict[str, str]) -> AsyncIterator[ServerProcess]:
    """The node the browser talks to."""
    node = await ServerProcess("--cluster", "--node-id", "node-a", env=cluster_env).start()
    try:
        yield node
    finally:
        await node.stop()


async def test_the_admin_page_shows_nodes_and_partition_owners_as_they_change(
    page: Any, server: ServerProcess, cluster_env: dict[str, str]
) -> None:
    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)
    await page.locator("#nav a[href='#/admin']").click()
    summary = page.locator("#cluster-summary")
    await summary.locator(
        f"text=1 of 1 nodes live; {PARTITIONS} of {PARTITIONS} partitions owned"
    ).wait_for()
    assert "served by node-a, which holds its share" in (await summary.text_content() or "")
    node_a = page.locator("#cluster-node-table tbody tr[data-node=node-a]")
    assert await node_a.locator("td").nth(2).text_content() == str(PARTITIONS)
    owners = page.locator("#cluster-partition-table tbody tr td:nth-child(2)")
    assert await owners.all_text_contents() == ["node-a"] * PARTITIONS

    # A second node joins: the view, refreshed while shown, splits the partitions.
    node_b = await ServerProcess("--cluster", "--node-id", "node-b", env=cluster_env).start()
    try:
        await summary.locator(
            f"text=2 of 2 nodes live; {PARTITIONS} of {PARTITIONS} partitions owned"
        ).wait_for(timeout=20_000)
        half = str(PARTITIONS // 2)
        for name in ("node-a", "node-b"):
            row = page.locator(f"#cluster-node-table tbody tr[data-node={name}]")
            await row.locator("td:nth-child(4)", has_text=half).wait_for(timeout=20_000)
        assert sorted(await owners.all_text_contents()) == sorted(
            ["node-a"] * (PARTITIONS // 2) + ["node-b"] * (PARTITIONS // 2)
        )
    finally:
        await node_b.stop()
