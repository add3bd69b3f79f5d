-- The record of sovd-sim (SPEC §3 "Storage"); names follow the reference SOVD Command WebApp.

CREATE TABLE users (
    user_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username       text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    email          text,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'engineer', 'admin')),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_users_role ON users (role);

CREATE TABLE sessions (
    session_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    family_id           uuid NOT NULL,
    refresh_token_hash  text NOT NULL UNIQUE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    rotated_at          timestamptz,
    revoked_at          timestamptz
);
CREATE INDEX idx_sessions_family_id ON sessions (family_id);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);
CREATE INDEX idx_sessions_expires_at ON sessions (expires_at);

CREATE TABLE vehicles (
    vehicle_id         uuid PRIMARY KEY,
    vin                text NOT NULL UNIQUE CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    make               text NOT NULL,
    model              text NOT NULL,
    year               integer NOT NULL CHECK (year BETWEEN 1981 AND 2100),
    fleet              text NOT NULL DEFAULT '',
    connection_status  text NOT NULL DEFAULT 'connected'
        CHECK (connection_status IN ('connected', 'disconnected', 'intermittent', 'error')),
    last_seen_at       timestamptz,
    metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_vehicles_connection_status ON vehicles (connection_status, vin);
CREATE INDEX idx_vehicles_fleet ON vehicles (fleet);

CREATE TABLE commands (
    command_id      uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    vehicle_id      uuid NOT NULL REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
    command_name    text NOT NULL,
    command_params  jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'timed_out')),
    error_message   text,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CHECK ((status IN ('completed', 'failed', 'timed_out')) = (completed_at IS NOT NULL))
);
CREATE INDEX idx_commands_submitted_at ON commands (submitted_at DESC, command_id DESC);
CREATE INDEX idx_commands_user_id ON commands (user_id, submitted_at DESC);
CREATE INDEX idx_commands_vehicle_id ON commands (vehicle_id, submitted_at DESC);
CREATE INDEX idx_commands_status ON commands (status, submitted_at DESC);

CREATE TABLE responses (
    response_id       uuid PRIMARY KEY,
    command_id        uuid NOT NULL REFERENCES commands (command_id) ON DELETE CASCADE,
    response_payload  jsonb NOT NULL,
    sequence_number   integer NOT NULL CHECK (sequence_number >= 1),
    is_final          boolean NOT NULL DEFAULT false,
    received_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (command_id, sequence_number)
);

CREATE TABLE audit_logs (
    log_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid REFERENCES users (user_id) ON DELETE SET NULL,
    vehicle_id   uuid REFERENCES vehicles (vehicle_id) ON DELETE SET NULL,
    command_id   uuid REFERENCES commands (command_id) ON DELETE SET NULL,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address   text,
    user_agent   text,
    timestamp    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_logs_timestamp ON audit_logs (timestamp DESC);
CREATE INDEX idx_audit_logs_action ON audit_logs (action, timestamp DESC);
CREATE INDEX idx_audit_logs_user_id ON audit_logs (user_id, timestamp DESC);
