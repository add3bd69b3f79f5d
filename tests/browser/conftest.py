"""Headless Chromium (Debian's `chromium`, driven by Playwright) against `sovd-sim serve`.

Without CI a missing browser skips these tests; with CI set it fails them. Screenshots of
each step go to `.artifacts/browser/<test>/`."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import IN_CI
from tests.support.server import ServerProcess

CHROMIUM = Path(os.environ.get("SOVD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "browser"
ADMIN_PASSWORD = "browser-admin-password-1"


def browser_missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what}; CI requires it (apt-get install -y chromium)", pytrace=False)
    pytest.skip(f"{what}; set CI=1 to make this a failure")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        browser_missing(f"Chromium is not installed at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
async def browser_context(chromium: Path, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh browser with an empty profile."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        browser_missing("the playwright package is not installed")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()


class Screenshots:
    """Numbered full-page screenshots of one test's steps."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.taken = 0

    async def take(self, step: str) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def expected_http_errors() -> set[int]:
    """Statuses a test provokes on purpose; the browser logs each failed request."""
    return set()


@pytest.fixture
async def page(
    browser_context: Any, artifacts: Path, server: ServerProcess, expected_http_errors: set[int]
) -> AsyncIterator[Any]:
    """A page whose console errors and uncaught exceptions fail the test; the server it
    talks to stops only after the page's last look."""
    page = browser_context.pages[0] if browser_context.pages else await browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    yield page
    await page.screenshot(path=str(artifacts / "last.png"), full_page=True)
    expected = tuple(f"status of {status} " for status in expected_http_errors)
    assert [e for e in errors if not any(mark in e for mark in expected)] == []


@pytest.fixture
def shots(page: Any, artifacts: Path) -> Screenshots:
    return Screenshots(page, artifacts)


@pytest.fixture
async def server() -> AsyncIterator[ServerProcess]:
    """The embedded default with its 10-vehicle demo fleet and a known admin password."""
    server = await ServerProcess(env={"SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD}).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api_token(http: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    body = {"username": username, "password": password}
    async with http.post(f"{url}/api/v1/auth/login", json=body) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["access_token"]
        return token


async def sign_in(page: Any, url: str, username: str, password: str) -> None:
    """Types into the login form and submits it with Enter, as a keyboard user does."""
    await page.goto(url)
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill(password)
    await page.locator("#login-password").press("Enter")
    await page.locator("#fleet-view").wait_for(state="visible")


async def unlabelled_controls(page: Any) -> list[str]:
    """Visible form controls that a screen reader could not name."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((control) => control.offsetParent !== null)
            .filter((control) => control.labels.length === 0 && !control.getAttribute("aria-label"))
            .map((control) => control.id || control.name || control.outerHTML)"""
    )
    return found
