"""What the `sovd_sim` fixture runs: its settings, read from the marker or `request.param`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from attrs import frozen

from sovd.records import Role

KNOWN = (
    "vehicles",
    "seed",
    "latency_ms",
    "fleet",
    "profile",
    "failure_modes",
    "role",
    "time_scale",
)
FLEET_SHAPE = ("vehicles", "profile", "failure_modes")


class SettingsError(Exception):
    """A `sovd_sim` setting the fixture cannot use; the message names it."""


@frozen
class SimSettings:
    """The simulated fleet and the user the fixture logs in as.

    Without `fleet`, the fixture spawns `vehicles` vehicles of the built-in `profile`
    (`vw-golf`, `ford-f150` or `chevrolet-malibu`) with the optional `failure_modes` table
    of a fleet config (`{"negative_response": 0.1}`, see examples/mixed-fleet.toml). With
    `fleet`, it spawns that TOML fleet file instead. `seed` and `latency_ms` (MIN, MAX) are
    the server's defaults: they apply to fleets that do not set their own. `time_scale`
    scales simulated time inside a command (the self-test's progress steps)."""

    vehicles: int = 3
    seed: int = 0
    latency_ms: tuple[int, int] = (1, 5)
    fleet: Path | None = None
    profile: str = "vw-golf"
    failure_modes: Mapping[str, float] | None = None
    role: Role = "admin"
    time_scale: float = 1.0


def _integer(name: str, value: object, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _latency(value: object) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SettingsError(f"latency_ms must be (MIN, MAX) in milliseconds, got {value!r}")
    low, high = (_integer("latency_ms", part, 0) for part in value)
    if high < low:
        raise SettingsError(f"latency_ms needs MIN <= MAX, got ({low}, {high})")
    return low, high


def _failure_modes(value: object) -> Mapping[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SettingsError(
            f"failure_modes must be a dict like the fleet config's table, got {value!r}"
        )
    for key, rate in value.items():
        if not isinstance(rate, int | float) or isinstance(rate, bool):
            raise SettingsError(f"failure_modes.{key} must be a number, got {rate!r}")
    return {key: float(rate) for key, rate in value.items()}


def _fleet_file(value: object, base_dir: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise SettingsError(f"fleet must be a path to a TOML fleet file, got {value!r}")
    path = base_dir / value
    if not path.is_file():
        raise SettingsError(f"fleet file {path} does not exist")
    return path


def read_settings(options: Mapping[str, Any], base_dir: Path) -> SimSettings:
    """Settings from the marker's keywords (and `request.param`); a relative `fleet` path is
    taken from `base_dir`, the directory of the test file."""
    unknown = sorted(set(options) - set(KNOWN))
    if unknown:
        raise SettingsError(f"unknown setting {', '.join(unknown)}; known: {', '.join(KNOWN)}")
    if options.get("fleet") is not None:
        clash = [name for name in FLEET_SHAPE if name in options]
        if clash:
            raise SettingsError(
                f"{', '.join(clash)} and fleet exclude each other: the fleet file says it"
            )
    defaults = SimSettings()
    role = options.get("role", defaults.role)
    if role not in get_args(Role):
        raise SettingsError(f"role must be one of {', '.join(get_args(Role))}, got {role!r}")
    profile = options.get("profile", defaults.profile)
    if not isinstance(profile, str):
        raise SettingsError(f"profile must be a profile name, got {profile!r}")
    time_scale = options.get("time_scale", defaults.time_scale)
    if not isinstance(time_scale, int | float) or isinstance(time_scale, bool) or time_scale < 0:
        raise SettingsError(f"time_scale must be a number >= 0, got {time_scale!r}")
    return SimSettings(
        vehicles=_integer("vehicles", options.get("vehicles", defaults.vehicles), 1),
        seed=_integer("seed", options.get("seed", defaults.seed)),
        latency_ms=_latency(options.get("latency_ms", defaults.latency_ms)),
        fleet=_fleet_file(options.get("fleet"), base_dir),
        profile=profile,
        failure_modes=_failure_modes(options.get("failure_modes")),
        role=role,
        time_scale=float(time_scale),
    )


def fleet_document(settings: SimSettings) -> str:
    """The TOML fleet file of a fleet built from the settings (one fleet named `pytest`)."""
    lines = [
        "[[fleets]]",
        'name = "pytest"',
        f"count = {settings.vehicles}",
        f"profile = {_toml_string(settings.profile)}",
    ]
    if settings.failure_modes is not None:
        lines.append("[fleets.failure_modes]")
        lines.extend(
            f"{_toml_string(key)} = {rate!r}" for key, rate in settings.failure_modes.items()
        )
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
