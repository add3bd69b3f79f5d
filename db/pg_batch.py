"""The write path on PostgreSQL: a whole batch of command rows as one statement.

Kept apart from the repositories: this is the hot path, shaped for the batch writer."""

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
BATCH_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "new_commands": (
        f"""INSERT INTO commands ({COMMAND_COLUMNS})
    SELECT command_id, user_id, vehicle_id, command_name, params::jsonb, status,
           submitted_at, error_message, completed_at
    FROM unnest({{}}) AS u (command_id, user_id, vehicle_id, command_name, params, status,
                          submitted_at, error_message, completed_at)""",
        ("uuid", "uuid", "uuid", "text", "text", "text", "timestamptz", "text", "timestamptz"),
    ),
    "status_changes": (
        """UPDATE commands AS c
    SET status = u.status, error_message = u.error_message, completed_at = u.completed_at
    FROM unnest({}) AS u (command_id, status, error_message, completed_at)
    WHERE c.command_id = u.command_id""",
        ("uuid", "text", "text", "timestamptz"),
    ),
    "responses": (
        f"""INSERT INTO responses ({RESPONSE_COLUMNS})
    SELECT response_id, command_id, payload::jsonb, sequence_number, is_final, received_at
    FROM unnest({{}}) AS u (response_id, command_id, payload, sequence_number, is_final,
                          received_at)""",
        ("uuid", "uuid", "text", "int", "bool", "timestamptz"),
    ),
    "audit": (
        f"""INSERT INTO audit_logs ({AUDIT_COLUMNS})
    SELECT log_id, action, entity_type, timestamp, user_id, vehicle_id, command_id,
           entity_id, details::jsonb, ip_address, user_agent
    FROM unnest({{}}) AS u (log_id, action, entity_type, timestamp, user_id, vehicle_id,
                          command_id, entity_id, details, ip_address, user_agent)""",
        (
            "uuid", "text", "text", "timestamptz", "uuid", "uuid", "uuid", "uuid", "text",
            "text", "text",
        ),
    ),
    "vehicle_states": (
        """INSERT INTO vehicle_states (vehicle_id, state, updated_at)
    SELECT vehicle_id, state::jsonb, updated_at
    FROM unnest({}) AS u (vehicle_id, state, updated_at)
    ON CONFLICT (vehicle_id) DO UPDATE
    SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at""",
        ("uuid", "text", "timestamptz"),
    ),
}  # fmt: skip


@functools.cache
def _batch_sql(present: tuple[str, ...]) -> str:
    """The statement writing the given parts of a batch (at most 31 variants, cached)."""
    ctes = []
    next_param = 1
    for name in present:
        template, types = BATCH_PARTS[name]
        params = ", ".join(f"${next_param + i}::{kind}[]" for i, kind in enumerate(types))
        next_param += len(types)
        ctes.append(f"{name} AS (\n    {template.format(params)}\n)")
    return "WITH " + ",\n".join(ctes) + "\nSELECT 1"


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def batch_statement(batch: WriteBatch) -> tuple[str, list[list[Any]]] | None:
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
                json_text(c.command_params),
                status,
                c.submitted_at,
                error_message,
                completed_at,
            )
        )
    rows: dict[str, list[tuple[Any, ...]]] = {
        "new_commands": new_commands,
        "status_changes": [
            (c.command_id, c.status, c.error_message, c.completed_at) for c in latest.values()
        ],
        "responses": [
            (
                r.response_id,
                r.command_id,
                json_text(r.response_payload),
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
                json_text(e.details),
                e.ip_address,
                e.user_agent,
            )
            for e in batch.audit
        ],
    }
    # One row per vehicle (an upsert may not touch a row twice): the last state wins.
    states = {s.vehicle_id: s for s in batch.vehicle_states}
    rows["vehicle_states"] = [
        (s.vehicle_id, json_text(s.state), s.updated_at) for s in states.values()
    ]
    present = tuple(name for name, part in rows.items() if part)
    if not present:
        return None
    return _batch_sql(present), [
        column for name in present for column in columns(rows[name], len(BATCH_PARTS[name][1]))
    ]
