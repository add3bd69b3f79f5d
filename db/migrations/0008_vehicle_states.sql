-- What commands changed of a vehicle (stored faults, written data identifiers, sessions,
-- security; see sovd/persisted.py), written with the result of the command that changed it,
-- so a restart or another process continues from it.
CREATE TABLE vehicle_states (
    vehicle_id  uuid PRIMARY KEY REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);
