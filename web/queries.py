"""Strict reading of query strings: every bad parameter is named in one 422."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from web.problems import ApiError, FieldProblem

T = TypeVar("T", bound=str)
MAX_OFFSET = 2**31 - 1


def page_body(
    name: str, items: list[Any], *, total: int, limit: int, offset: int
) -> dict[str, Any]:
    """The envelope of every paged list: `{name: [...], limit, offset, total}`."""
    return {name: items, "limit": limit, "offset": offset, "total": total}


class QueryReader:
    def __init__(self, query: Mapping[str, str], known: Collection[str]) -> None:
        self._query = query
        self.problems = [
            FieldProblem(name, "unknown query parameter") for name in query if name not in known
        ]

    def _raw(self, name: str) -> str | None:
        value = self._query.get(name)
        return value if value else None

    def text(self, name: str, max_length: int = 200) -> str | None:
        value = self._raw(name)
        if value is not None and len(value) > max_length:
            self.problems.append(FieldProblem(name, f"must be at most {max_length} characters"))
            return None
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problems.append(FieldProblem(name, "must be an integer"))
            return default
        if not low <= number <= high:
            self.problems.append(FieldProblem(name, f"must be between {low} and {high}"))
            return default
        return number

    def uuid(self, name: str) -> UUID | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            return UUID(value)
        except ValueError:
            self.problems.append(FieldProblem(name, "must be a UUID"))
            return None

    def timestamp(self, name: str) -> datetime | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.problems.append(FieldProblem(name, "must be an ISO 8601 date or date-time"))
            return None
        try:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        except OverflowError:
            self.problems.append(FieldProblem(name, "must lie between years 1 and 9999 in UTC"))
            return None

    def choice(self, name: str, options: Collection[T]) -> T | None:
        value = self._raw(name)
        if value is None:
            return None
        for option in options:
            if option == value:
                return option
        self.problems.append(FieldProblem(name, f"must be one of {', '.join(options)}"))
        return None

    def check(self) -> None:
        if self.problems:
            raise ApiError(
                422, "validation_failed", "The query is not valid.", errors=self.problems
            )
