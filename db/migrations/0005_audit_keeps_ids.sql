-- The audit log is a record of what happened: its ids name users, vehicles and commands
-- that may since be gone, so it holds them as plain values. Without the foreign keys, every
-- audit row written on the command path costs three lookups less, and deleting a fleet no
-- longer rewrites its audit history (the indexes below existed only for that).
ALTER TABLE audit_logs
    DROP CONSTRAINT audit_logs_user_id_fkey,
    DROP CONSTRAINT audit_logs_vehicle_id_fkey,
    DROP CONSTRAINT audit_logs_command_id_fkey;
DROP INDEX idx_audit_logs_vehicle_id;
DROP INDEX idx_audit_logs_command_id;
