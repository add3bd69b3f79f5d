"""The query-string readers, with any text a client may send: a value or a named problem, never
an exception, and a value that is always within its bounds."""

from __future__ import annotations

from datetime import UTC
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.problems import ApiError
from web.queries import MAX_OFFSET, QueryReader
from web.sovd_api.errors import SovdApiError
from web.sovd_api.faults import FaultFilter

ANY_TEXT = st.text(max_size=64) | st.from_regex(r"-?\d{1,25}", fullmatch=True)
FAULT_QUERY_NAMES = [
    "status[confirmedDTC]",
    "status[mask]",
    "status[testFailed]",
    "status[bogus]",
    "severity",
    "scope",
]
DATES = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())


def read(value: str) -> QueryReader:
    return QueryReader({"x": value}, ("x",))


@given(ANY_TEXT)
def test_an_integer_is_in_bounds_or_named(value: str) -> None:
    reader = read(value)
    number = reader.integer("x", 7, 1, 500)
    assert 1 <= number <= 500
    assert number == 7 or not reader.problems
    assert all(p.field == "x" for p in reader.problems)


@given(ANY_TEXT)
def test_a_uuid_parses_or_is_named(value: str) -> None:
    reader = read(value)
    parsed = reader.uuid("x")
    assert parsed is None or isinstance(parsed, UUID)
    assert (parsed is None and value != "") == bool(reader.problems) or value == ""


@given(ANY_TEXT | DATES)
def test_a_timestamp_is_aware_utc_or_named(value: str) -> None:
    reader = read(value)
    moment = reader.timestamp("x")
    if moment is not None:
        assert moment.tzinfo is not None
        assert moment.utcoffset() == UTC.utcoffset(None)
        assert not reader.problems
    elif value:
        assert [p.field for p in reader.problems] == ["x"]


@given(ANY_TEXT)
def test_a_choice_is_one_of_the_options_or_named(value: str) -> None:
    reader = read(value)
    chosen = reader.choice("x", ("pending", "completed"))
    assert chosen in (None, "pending", "completed")
    if chosen is None and value:
        assert reader.problems


@given(st.dictionaries(st.text(max_size=12), ANY_TEXT, max_size=4))
def test_check_raises_one_422_naming_every_problem(query: dict[str, str]) -> None:
    reader = QueryReader(query, ("limit",))
    reader.integer("limit", 50, 1, 500)
    reader.integer("offset", 0, 0, MAX_OFFSET)
    if not reader.problems:
        reader.check()
        return
    with pytest.raises(ApiError) as caught:
        reader.check()
    assert caught.value.status == 422
    assert [e.field for e in caught.value.errors] == [p.field for p in reader.problems]


@given(
    st.dictionaries(
        st.sampled_from(FAULT_QUERY_NAMES),
        ANY_TEXT,
        max_size=4,
    )
)
def test_a_fault_filter_is_read_or_refused_with_a_400(query: dict[str, str]) -> None:
    refused: SovdApiError | None = None
    try:
        keep = FaultFilter(query)
    except SovdApiError as exc:
        refused = exc
    if refused is not None:
        assert refused.status == 400
        assert refused.parameters["field"] in query
        return
    assert keep.severity is None or 1 <= keep.severity <= 4
    assert keep.mask is None or 0 <= keep.mask <= 0xFF
