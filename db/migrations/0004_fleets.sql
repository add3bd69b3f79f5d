-- Fleets spawned from a fleet config (SPEC §5): a server spawns the recorded ones at start.
-- `definition` is a fleet config document (same schema as the TOML file) holding this fleet
-- alone, its seed resolved, so the same vehicles come back on every start.
CREATE TABLE fleets (
    name           text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    definition     jsonb NOT NULL,
    vehicle_count  integer NOT NULL CHECK (vehicle_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Deleting a fleet deletes its vehicles and, with them, their commands; the audit log keeps
-- its entries (the references go NULL), which needs these lookups to be indexed.
CREATE INDEX idx_audit_logs_vehicle_id ON audit_logs (vehicle_id) WHERE vehicle_id IS NOT NULL;
CREATE INDEX idx_audit_logs_command_id ON audit_logs (command_id) WHERE command_id IS NOT NULL;
