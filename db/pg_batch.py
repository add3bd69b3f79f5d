"""The write path on PostgreSQL: a whole batch of command rows as one statement.

Kept apart from the repositories: this is the hot path, shaped for the batch writer.

Each kind of row but status changes travels as one JSON document made by orjson in one call:
an array of rows, each row an array of its columns. PostgreSQL reads it once as jsonb and
takes each column out by position. Binding every column as an array parameter instead cost
the server a type check per element in asyncpg's encoder and a JSON encoding per nested
document: 2-5% of its CPU per command."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson

from db.repositories import StatusChange, WriteBatch

COMMAND_COLUMNS = (
    "command_id, user_id, vehicle_id, command_name, command_params, status, submitted_at, "
    "error_message, completed_at"
)
RESPONSE_COLUMNS = (
    "response_id, command_id, response_payload, sequence_number, is_final, received_at"
)
AUDIT_COLUMNS = (
    "log_id, action, entity_type, timestamp, user_id, vehicle_id, command_id, entity_id, "
    "details, ip_address, user_agent"
)


# One data-modifying CTE per kind of row, so a whole batch is one statement: one round trip
# and one implicit transaction. The parts see the same snapshot, so a status change must not
# target a command inserted by the same statement; `batch_statement` folds those into the
# insert. Foreign keys are checked at the end of the statement, after every part ran.
# `{rows}` is the part's JSON document; each row's columns are read with `r->>N` (text, then
# cast) or `r->N` (a nested JSON document).
JSON_PARTS: dict[str, str] = {
    "new_commands": f"""INSERT INTO commands ({COMMAND_COLUMNS})
    SELECT (r->>0)::uuid, (r->>1)::uuid, (r->>2)::uuid, r->>3, r->4, r->>5,
           (r->>6)::timestamptz, r->>7, (r->>8)::timestamptz
    FROM jsonb_array_elements({{rows}}) AS r""",
    "responses": f"""INSERT INTO responses ({RESPONSE_COLUMNS})
    SELECT (r->>0)::uuid, (r->>1)::uuid, r->2, (r->>3)::int, (r->>4)::bool,
           (r->>5)::timestamptz
    FROM jsonb_array_elements({{rows}}) AS r""",
    "audit": f"""INSERT INTO audit_logs ({AUDIT_COLUMNS})
    SELECT (r->>0)::uuid, r->>1, r->>2, (r->>3)::timestamptz, (r->>4)::uuid, (r->>5)::uuid,
           (r->>6)::uuid, (r->>7)::uuid, r->8, r->>9, r->>10
    FROM jsonb_array_elements({{rows}}) AS r""",
    "vehicle_states": """INSERT INTO vehicle_states (vehicle_id, state, updated_at)
    SELECT (r->>0)::uuid, r->1, (r->>2)::timestamptz
    FROM jsonb_array_elements({rows}) AS r
    ON CONFLICT (vehicle_id) DO UPDATE
    SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at""",
}
# Status changes join `commands`, so the planner must see how few rows they are: it estimates
# a bound array's `unnest` at 10 rows and picks the primary key, where it takes a JSON
# document's elements for 100 and scans the table whole until it holds some 40,000 rows.
# They are bound as one array per column.
STATUS_CHANGES = """UPDATE commands AS c
    SET status = u.status, error_message = u.error_message, completed_at = u.completed_at
    FROM unnest({0}::uuid[], {1}::text[], {2}::text[], {3}::timestamptz[])
         AS u (command_id, status, error_message, completed_at)
    WHERE c.command_id = u.command_id"""
STATUS_COLUMNS = 4
# In the order the parts are written.
PARTS = ("new_commands", "status_changes", "responses", "audit", "vehicle_states")


@functools.cache
def _batch_sql(present: tuple[str, ...]) -> str:
    """The statement writing the given parts of a batch (at most 31 variants, cached)."""
    ctes = []
    next_param = 1
    for name in present:
        if name == "status_changes":
            numbered = STATUS_CHANGES.format(
                *(f"${next_param + column}" for column in range(STATUS_COLUMNS))
            )
            next_param += STATUS_COLUMNS
        else:
            numbered = JSON_PARTS[name].format(rows=f"${next_param}::text::jsonb")
            next_param += 1
        ctes.append(f"{name} AS (\n    {numbered}\n)")
    return "WITH " + ",\n".join(ctes) + "\nSELECT 1"


def _uuid_text(value: object) -> str:
    """Ids read back from PostgreSQL are asyncpg's own UUID type, which orjson leaves to this
    fallback."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def batch_statement(batch: WriteBatch) -> tuple[str, list[Any]] | None:
    """(SQL, arguments) writing the whole batch in one statement, or None for nothing."""
    latest: dict[UUID, StatusChange] = {}
    for change in batch.status_changes:
        latest[change.command_id] = change
    new_commands: list[tuple[Any, ...]] = []
    for c in batch.new_commands:
        # A status change of a command in the same batch is folded into its new row.
        folded = latest.pop(c.command_id, None)
        status, error_message, completed_at = (
            (c.status, c.error_message, c.completed_at)
            if folded is None
            else (folded.status, folded.error_message, folded.completed_at)
        )
        new_commands.append(
            (
                c.command_id,
                c.user_id,
                c.vehicle_id,
                c.command_name,
                c.command_params,
                status,
                c.submitted_at,
                error_message,
                completed_at,
            )
        )
    # One row per vehicle (an upsert may not touch a row twice): the last state wins.
    states = {s.vehicle_id: s for s in batch.vehicle_states}
    rows: dict[str, list[tuple[Any, ...]]] = {
        "new_commands": new_commands,
        "status_changes": [
            (c.command_id, c.status, c.error_message, c.completed_at) for c in latest.values()
        ],
        "responses": [
            (
                r.response_id,
                r.command_id,
                r.response_payload,
                r.sequence_number,
                r.is_final,
                r.received_at,
            )
            for r in batch.responses
        ],
        "audit": [
            (
                e.log_id,
                e.action,
                e.entity_type,
                e.timestamp,
                e.user_id,
                e.vehicle_id,
                e.command_id,
                e.entity_id,
                e.details,
                e.ip_address,
                e.user_agent,
            )
            for e in batch.audit
        ],
        "vehicle_states": [(s.vehicle_id, s.state, s.updated_at) for s in states.values()],
    }
    present = tuple(name for name in PARTS if rows[name])
    if not present:
        return None
    args: list[Any] = []
    for name in present:
        if name == "status_changes":
            args.extend(columns(rows[name], STATUS_COLUMNS))
        else:
            args.append(
                orjson.dumps(rows[name], default=_uuid_text, option=orjson.OPT_NAIVE_UTC).decode()
            )
    return _batch_sql(present), args
