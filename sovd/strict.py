"""Strict scalar hooks for cattrs, shared by the command parameters and the fleet config:
no coercion (a "5" is not a 5, a true is not a 1), and an error that names what was given."""

from __future__ import annotations

from collections.abc import Callable

Describe = Callable[[object], str]
Hook = Callable[[object, object], object]


def exact(expected: type, label: str, describe: Describe) -> Hook:
    """Accepts values of exactly `expected` (so bool is not an int)."""

    def structure(value: object, _: object) -> object:
        if type(value) is not expected:
            raise TypeError(f"expected {label}, got {describe(value)}")
        return value

    return structure


def number(label: str, describe: Describe) -> Callable[[object, object], float]:
    """Accepts an int or a float (never a bool) and gives a float."""

    def structure(value: object, _: object) -> float:
        if type(value) not in (int, float):
            raise TypeError(f"expected {label}, got {describe(value)}")
        return float(value)  # type: ignore[arg-type]

    return structure
