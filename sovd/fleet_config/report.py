"""The mistakes found in a fleet config, each with its key path, gathered while parsing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from attrs import frozen

from sovd.errors import InvalidProfile, SovdError

T = TypeVar("T")


@frozen
class ConfigProblem:
    """One mistake: `path` is the key path (`fleets[2].count`), `message` what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidFleetConfig(SovdError):
    """A fleet config with mistakes; `lines()` gives one `SOURCE: PATH: MESSAGE` each."""

    def __init__(self, source: str, problems: Iterable[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}: {problem}" for problem in self.problems]


class Report:
    """The problems found so far, in the order they were found."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    def checkpoint(self) -> int:
        return len(self.problems)

    def found_since(self, checkpoint: int) -> bool:
        return len(self.problems) > checkpoint

    def build(self, path: str, make: Callable[[], T]) -> T | None:
        """Runs a domain constructor; its InvalidProfile becomes a problem at `path`."""
        try:
            return make()
        except InvalidProfile as exc:
            self.add(path, str(exc))
            return None
