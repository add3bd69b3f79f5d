-- SOVD operation executions are commands (RoutineControl, ECUReset). A client deletes one
-- from its component's execution list (DELETE .../executions/{id}); the command itself stays
-- on record for /api/v1/commands and the audit log, only marked as dismissed.
ALTER TABLE commands ADD COLUMN dismissed_at timestamptz;
