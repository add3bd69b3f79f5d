"""The `sovd_sim` pytest fixture: a simulated fleet behind an in-process sovd-sim server,
and a signed-in client to submit, await and stream its commands (plugin.py)."""

from sovd_sim_pytest.client import ApiError, SovdSimClient, StreamError
from sovd_sim_pytest.settings import SettingsError, SimSettings

__all__ = ["ApiError", "SettingsError", "SimSettings", "SovdSimClient", "StreamError"]
