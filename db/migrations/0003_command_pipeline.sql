-- Idempotency-Key support for POST /api/v1/commands (SPEC §3 "Commands").
CREATE TABLE idempotency_keys (
    user_id       uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text NOT NULL,
    command_id    uuid NOT NULL REFERENCES commands (command_id) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Recovery after a restart looks for commands that never reached a terminal state.
CREATE INDEX idx_commands_unfinished ON commands (submitted_at)
    WHERE status IN ('pending', 'in_progress');
