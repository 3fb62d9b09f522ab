/// Numbered migrations of the PostgreSQL schema. A shipped migration never changes: add a new one.
/// Only SQL that Postgres-compatible distributed engines also accept: no OIDs, no inheritance,
/// no meaning read into sequences.
enum PostgresMigrations {
    static let all: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE subjects (
                    id UUID PRIMARY KEY,
                    created_at BIGINT NOT NULL,
                    event_count BIGINT NOT NULL DEFAULT 0 CHECK (event_count >= 0),
                    merged_into UUID REFERENCES subjects(id),
                    merged_at BIGINT,
                    CHECK ((merged_into IS NULL) = (merged_at IS NULL))
                )
                """,
                """
                CREATE TABLE identities (
                    id UUID PRIMARY KEY,
                    subject_id UUID NOT NULL REFERENCES subjects(id),
                    kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'external_id', 'device_id')),
                    blind_index BYTEA NOT NULL CHECK (length(blind_index) = 16),
                    ciphertext BYTEA NOT NULL,
                    created_at BIGINT NOT NULL,
                    UNIQUE (kind, blind_index)
                )
                """,
                "CREATE INDEX identities_subject ON identities (subject_id)",
                """
                CREATE TABLE consent_events (
                    id UUID PRIMARY KEY,
                    subject_id UUID NOT NULL REFERENCES subjects(id),
                    ordinal BIGINT NOT NULL CHECK (ordinal > 0),
                    purpose TEXT NOT NULL,
                    decision TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'withdrawn')),
                    status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                    method TEXT NOT NULL,
                    notice_id TEXT,
                    notice_version TEXT,
                    source TEXT,
                    actor TEXT NOT NULL,
                    recorded_at BIGINT NOT NULL,
                    expires_at BIGINT,
                    proof_ip_hash TEXT,
                    proof_ua_hash TEXT,
                    consent_string TEXT,
                    confirms UUID REFERENCES consent_events(id),
                    UNIQUE (subject_id, ordinal) DEFERRABLE INITIALLY IMMEDIATE
                )
                """,
                """
                CREATE TABLE consent_state (
                    subject_id UUID NOT NULL REFERENCES subjects(id),
                    purpose TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                    event_id UUID NOT NULL REFERENCES consent_events(id),
                    decided_at BIGINT NOT NULL,
                    expires_at BIGINT,
                    PRIMARY KEY (subject_id, purpose)
                )
                """,
                "CREATE INDEX consent_state_audience ON consent_state (purpose, status, subject_id)",
                """
                CREATE TABLE confirmations (
                    token_hash BYTEA PRIMARY KEY,
                    event_id UUID NOT NULL REFERENCES consent_events(id),
                    subject_id UUID NOT NULL REFERENCES subjects(id),
                    purpose TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT
                )
                """,
                """
                CREATE TABLE api_keys (
                    id UUID PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                    role TEXT NOT NULL,
                    prefix TEXT NOT NULL,
                    key_hash BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                """
                CREATE TABLE audit_log (
                    sequence BIGINT PRIMARY KEY CHECK (sequence > 0),
                    id UUID NOT NULL UNIQUE,
                    at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target_type TEXT NOT NULL,
                    target_id TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    details TEXT NOT NULL,
                    previous_hash BYTEA NOT NULL CHECK (length(previous_hash) = 32),
                    hash BYTEA NOT NULL CHECK (length(hash) = 32)
                )
                """,
                """
                CREATE TABLE audit_head (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    sequence BIGINT NOT NULL,
                    hash BYTEA NOT NULL CHECK (length(hash) = 32)
                )
                """,
                "INSERT INTO audit_head (id, sequence, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'))",
                "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            ]
        ),
        (
            2,
            [
                // Covering index for the consent-check hot path: an index-only probe of the blind index.
                "CREATE INDEX identities_lookup ON identities (kind, blind_index) INCLUDE (subject_id)"
            ]
        ),
        (
            3,
            [
                // A grant imported with proof of an earlier double opt-in confirmation keeps when the
                // person confirmed, next to the event that records it.
                "ALTER TABLE consent_events ADD COLUMN confirmed_at BIGINT"
            ]
        ),
        (
            4,
            [
                // Durable jobs (ADR 0010); the same table as SQLite's migration 6.
                """
                CREATE TABLE jobs (
                    id UUID PRIMARY KEY,
                    kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
                    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
                    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'needs_attention', 'cancelled')),
                    payload TEXT NOT NULL,
                    cursor TEXT,
                    progress_done BIGINT NOT NULL DEFAULT 0 CHECK (progress_done >= 0),
                    progress_total BIGINT CHECK (progress_total >= 0),
                    result TEXT,
                    last_error TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
                    run_after BIGINT NOT NULL,
                    lease_id UUID,
                    lease_owner TEXT,
                    lease_expires_at BIGINT,
                    cancel_requested BOOLEAN NOT NULL DEFAULT false,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    started_at BIGINT,
                    finished_at BIGINT,
                    UNIQUE (kind, idempotency_key),
                    CHECK ((state = 'running') = (lease_id IS NOT NULL)),
                    CHECK ((lease_id IS NULL) = (lease_expires_at IS NULL))
                )
                """,
                "CREATE INDEX jobs_queued ON jobs (run_after) WHERE state = 'queued'",
                "CREATE INDEX jobs_running ON jobs (lease_expires_at) WHERE state = 'running'",
                "CREATE INDEX jobs_created ON jobs (created_at, id)",
                """
                CREATE TABLE job_locks (
                    name TEXT PRIMARY KEY,
                    job_id UUID NOT NULL,
                    lease_id UUID NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
            ]
        ),
        (
            5,
            [
                """
                CREATE TABLE dsr_requests (
                    id UUID PRIMARY KEY,
                    type TEXT NOT NULL,
                    regime TEXT NOT NULL,
                    status TEXT NOT NULL,
                    subject_id UUID NOT NULL,
                    received_at BIGINT NOT NULL,
                    received_on TEXT NOT NULL,
                    due_on TEXT NOT NULL,
                    due_at BIGINT NOT NULL,
                    acknowledge_on TEXT,
                    acknowledge_by BIGINT,
                    extended_on TEXT,
                    extension_reason TEXT,
                    verification TEXT,
                    denial TEXT,
                    agent TEXT,
                    submitted_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    finished_at BIGINT
                )
                """,
                "CREATE INDEX dsr_requests_due ON dsr_requests (due_at, id)",
                "CREATE INDEX dsr_requests_subject ON dsr_requests (subject_id)",
            ]
        ),
        (
            6,
            [
                """
                CREATE TABLE dsr_tasks (
                    request_id UUID NOT NULL REFERENCES dsr_requests (id),
                    system TEXT NOT NULL,
                    job_id UUID NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
                    receipt TEXT,
                    sealed_rows BYTEA,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (request_id, system)
                )
                """
            ]
        ),
        (
            7,
            [
                """
                CREATE TABLE suppressions (
                    kind TEXT NOT NULL,
                    blind_index BYTEA NOT NULL CHECK (length(blind_index) = 16),
                    request_id UUID NOT NULL,
                    erased_at BIGINT NOT NULL,
                    PRIMARY KEY (kind, blind_index)
                )
                """,
                "CREATE INDEX suppressions_erased ON suppressions (erased_at)",
            ]
        ),
        (
            8,
            [
                """
                CREATE TABLE dsr_tokens (
                    token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
                    request_id UUID NOT NULL REFERENCES dsr_requests (id),
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT
                )
                """,
                "CREATE INDEX dsr_tokens_request ON dsr_tokens (request_id)",
            ]
        ),
        (
            9,
            [
                """
                CREATE TABLE dsr_details (
                    request_id UUID PRIMARY KEY REFERENCES dsr_requests (id),
                    sealed BYTEA NOT NULL
                )
                """,
                """
                CREATE TABLE dsr_links (
                    token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
                    request_id UUID NOT NULL REFERENCES dsr_requests (id),
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX dsr_links_request ON dsr_links (request_id)",
                "CREATE INDEX dsr_tasks_pending ON dsr_tasks (updated_at) WHERE state = 'pending'",
            ]
        ),
        (
            10,
            [
                // The change feed of the consent check's answers (ADR 0013); see SQLite migration 12.
                "CREATE TABLE answer_feed (id INT PRIMARY KEY CHECK (id = 1), position BIGINT NOT NULL)",
                "INSERT INTO answer_feed (id, position) VALUES (1, 0)",
                """
                CREATE TABLE answer_changes (
                    position BIGINT NOT NULL,
                    subject_id UUID,
                    identity_kind TEXT,
                    identity_tag BIGINT,
                    recorded_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX answer_changes_position ON answer_changes (position)",
            ]
        ),
    ]
}
