"""pytest plugin (entry point `pytest11`): the `sovd_sim` fixture and its marker.

    @pytest.mark.sovd_sim(vehicles=5, seed=1, latency_ms=(1, 5))
    async def test_read_dtc(sovd_sim):
        vehicle = (await sovd_sim.vehicles())[0]
        done = await sovd_sim.run(vehicle, "ReadDTC", {"ecuAddress": "0x01"})

Settings (SimSettings) come from the marker, closest one winning, then from
`request.param` when the fixture is parametrized indirectly. The server itself is imported
only when a test asks for the fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sovd_sim_pytest.client import SovdSimClient
from sovd_sim_pytest.settings import SettingsError, read_settings

MARKER = "sovd_sim"
MARKER_HELP = (
    "sovd_sim(vehicles=3, seed=0, latency_ms=(1, 5), fleet=None, profile='vw-golf', "
    "failure_modes=None, role='admin', time_scale=1.0): the simulated fleet of the sovd_sim "
    "fixture; fleet is a TOML fleet file, relative to the test file"
)
NEEDS_PYTEST_ASYNCIO = (
    "the sovd_sim fixture needs pytest-asyncio (pytest-aiohttp brings it): "
    "pip install 'sovd-sim[pytest]'"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}{MARKER_HELP.removeprefix(MARKER)}")


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise SettingsError(f"@pytest.mark.{MARKER} takes keyword arguments only")
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, dict):
            raise SettingsError(
                f"an indirect parameter of {MARKER} is a dict of settings, got {param!r}"
            )
        options.update(param)
    return options


async def _sovd_sim(request: pytest.FixtureRequest) -> AsyncIterator[SovdSimClient]:
    """A server on the embedded default with a small fleet, and a client signed in to it."""
    from sovd_sim_pytest.simulator import open_simulator

    problem = None
    try:
        settings = read_settings(_options(request), request.path.parent)
        async with open_simulator(settings) as client:
            yield client
    except SettingsError as exc:  # raised before the yield: the test never ran
        problem = str(exc)
    if problem is not None:  # out of the except block, so pytest shows this line alone
        pytest.fail(f"{MARKER}: {problem}", pytrace=False)


def _needs_pytest_asyncio() -> None:
    pytest.fail(NEEDS_PYTEST_ASYNCIO, pytrace=False)


sovd_sim: Any
try:
    import pytest_asyncio
except ImportError:  # the plugin loads wherever sovd-sim is installed; the fixture needs it
    sovd_sim = pytest.fixture(_needs_pytest_asyncio, name=MARKER)
else:
    sovd_sim = pytest_asyncio.fixture(_sovd_sim, name=MARKER)
