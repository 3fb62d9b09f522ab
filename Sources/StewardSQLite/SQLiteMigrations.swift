/// Numbered migrations of the SQLite schema. A shipped migration never changes: add a new one.
enum SQLiteMigrations {
    static let all: [(version: Int, sql: String)] = [
        (
            1,
            """
            CREATE TABLE subjects (
                id TEXT PRIMARY KEY,
                created_at INTEGER NOT NULL,
                event_count INTEGER NOT NULL DEFAULT 0 CHECK (event_count >= 0),
                merged_into TEXT REFERENCES subjects(id),
                merged_at INTEGER,
                CHECK ((merged_into IS NULL) = (merged_at IS NULL))
            );
            CREATE TABLE identities (
                id TEXT PRIMARY KEY,
                subject_id TEXT NOT NULL REFERENCES subjects(id),
                kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'external_id', 'device_id')),
                blind_index BLOB NOT NULL CHECK (length(blind_index) = 16),
                ciphertext BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                UNIQUE (kind, blind_index)
            );
            CREATE INDEX identities_subject ON identities (subject_id);
            CREATE TABLE consent_events (
                id TEXT PRIMARY KEY,
                subject_id TEXT NOT NULL REFERENCES subjects(id),
                ordinal INTEGER NOT NULL CHECK (ordinal > 0),
                purpose TEXT NOT NULL,
                decision TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'withdrawn')),
                status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                method TEXT NOT NULL,
                notice_id TEXT,
                notice_version TEXT,
                source TEXT,
                actor TEXT NOT NULL,
                recorded_at INTEGER NOT NULL,
                expires_at INTEGER,
                proof_ip_hash TEXT,
                proof_ua_hash TEXT,
                consent_string TEXT,
                confirms TEXT REFERENCES consent_events(id),
                UNIQUE (subject_id, ordinal)
            );
            CREATE TABLE consent_state (
                subject_id TEXT NOT NULL REFERENCES subjects(id),
                purpose TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                event_id TEXT NOT NULL REFERENCES consent_events(id),
                decided_at INTEGER NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (subject_id, purpose)
            ) WITHOUT ROWID;
            CREATE INDEX consent_state_audience ON consent_state (purpose, status, subject_id);
            CREATE TABLE confirmations (
                token_hash BLOB PRIMARY KEY,
                event_id TEXT NOT NULL REFERENCES consent_events(id),
                subject_id TEXT NOT NULL REFERENCES subjects(id),
                purpose TEXT NOT NULL,
                expires_at INTEGER NOT NULL,
                used_at INTEGER
            );
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                role TEXT NOT NULL,
                prefix TEXT NOT NULL,
                key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            );
            CREATE TABLE audit_log (
                sequence INTEGER PRIMARY KEY CHECK (sequence > 0),
                id TEXT NOT NULL UNIQUE,
                at INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target_type TEXT NOT NULL,
                target_id TEXT NOT NULL,
                outcome TEXT NOT NULL,
                details TEXT NOT NULL,
                previous_hash BLOB NOT NULL CHECK (length(previous_hash) = 32),
                hash BLOB NOT NULL CHECK (length(hash) = 32)
            );
            CREATE TABLE audit_head (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                sequence INTEGER NOT NULL,
                hash BLOB NOT NULL CHECK (length(hash) = 32)
            );
            INSERT INTO audit_head (id, sequence, hash) VALUES (1, 0, zeroblob(32));
            CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        ),
        (
            2,
            """
            -- Covering index for the consent-check hot path: the blind-index probe yields the subject
            -- id without reading the identities table, whose rows carry the ciphertexts. Queries name
            -- it with INDEXED BY: SQLite otherwise prefers the UNIQUE (kind, blind_index) index.
            CREATE INDEX identities_lookup ON identities (kind, blind_index, subject_id);
            """
        ),
        (
            3,
            """
            -- Ids become 16-byte BLOBs instead of 36-character text (PostgreSQL's UUID type is 16 bytes
            -- from migration 1). Every id index and the consent-check working set shrink by about a
            -- third. SQLite cannot change a column's type, so each table is rebuilt (its documented
            -- 12-step procedure): the runner turns foreign keys off around this migration and runs
            -- PRAGMA foreign_key_check before it commits. steward_uuid() is registered by the connection.
            CREATE TABLE subjects_v3 (
                id BLOB PRIMARY KEY CHECK (length(id) = 16),
                created_at INTEGER NOT NULL,
                event_count INTEGER NOT NULL DEFAULT 0 CHECK (event_count >= 0),
                merged_into BLOB REFERENCES subjects(id),
                merged_at INTEGER,
                CHECK ((merged_into IS NULL) = (merged_at IS NULL))
            );
            INSERT INTO subjects_v3 (id, created_at, event_count, merged_into, merged_at)
                SELECT steward_uuid(id), created_at, event_count, steward_uuid(merged_into), merged_at FROM subjects;
            -- Identities are clustered on their blind index: the check's probe is one descent of the
            -- table itself, and a new identity writes one random-keyed B-tree instead of two (the
            -- UNIQUE index and migration 2's covering index both go).
            CREATE TABLE identities_v3 (
                kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'external_id', 'device_id')),
                blind_index BLOB NOT NULL CHECK (length(blind_index) = 16),
                subject_id BLOB NOT NULL REFERENCES subjects(id),
                id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
                ciphertext BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (kind, blind_index)
            ) WITHOUT ROWID;
            INSERT INTO identities_v3 (kind, blind_index, subject_id, id, ciphertext, created_at)
                SELECT kind, blind_index, steward_uuid(subject_id), steward_uuid(id), ciphertext, created_at
                FROM identities ORDER BY kind, blind_index;
            CREATE TABLE consent_events_v3 (
                id BLOB PRIMARY KEY CHECK (length(id) = 16),
                subject_id BLOB NOT NULL REFERENCES subjects(id),
                ordinal INTEGER NOT NULL CHECK (ordinal > 0),
                purpose TEXT NOT NULL,
                decision TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'withdrawn')),
                status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                method TEXT NOT NULL,
                notice_id TEXT,
                notice_version TEXT,
                source TEXT,
                actor TEXT NOT NULL,
                recorded_at INTEGER NOT NULL,
                expires_at INTEGER,
                proof_ip_hash TEXT,
                proof_ua_hash TEXT,
                consent_string TEXT,
                confirms BLOB REFERENCES consent_events(id),
                UNIQUE (subject_id, ordinal)
            );
            INSERT INTO consent_events_v3
                SELECT steward_uuid(id), steward_uuid(subject_id), ordinal, purpose, decision, status, method,
                    notice_id, notice_version, source, actor, recorded_at, expires_at, proof_ip_hash, proof_ua_hash,
                    consent_string, steward_uuid(confirms)
                FROM consent_events;
            CREATE TABLE consent_state_v3 (
                subject_id BLOB NOT NULL REFERENCES subjects(id),
                purpose TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'withdrawn')),
                event_id BLOB NOT NULL REFERENCES consent_events(id),
                decided_at INTEGER NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (subject_id, purpose)
            ) WITHOUT ROWID;
            INSERT INTO consent_state_v3
                SELECT steward_uuid(subject_id), purpose, status, steward_uuid(event_id), decided_at, expires_at
                FROM consent_state;
            CREATE TABLE confirmations_v3 (
                token_hash BLOB PRIMARY KEY,
                event_id BLOB NOT NULL REFERENCES consent_events(id),
                subject_id BLOB NOT NULL REFERENCES subjects(id),
                purpose TEXT NOT NULL,
                expires_at INTEGER NOT NULL,
                used_at INTEGER
            );
            INSERT INTO confirmations_v3
                SELECT token_hash, steward_uuid(event_id), steward_uuid(subject_id), purpose, expires_at, used_at
                FROM confirmations;
            CREATE TABLE api_keys_v3 (
                id BLOB PRIMARY KEY CHECK (length(id) = 16),
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                role TEXT NOT NULL,
                prefix TEXT NOT NULL,
                key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            );
            INSERT INTO api_keys_v3
                SELECT steward_uuid(id), name, role, prefix, key_hash, created_at, revoked_at FROM api_keys;
            CREATE TABLE audit_log_v3 (
                sequence INTEGER PRIMARY KEY CHECK (sequence > 0),
                id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
                at INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target_type TEXT NOT NULL,
                target_id TEXT NOT NULL,
                outcome TEXT NOT NULL,
                details TEXT NOT NULL,
                previous_hash BLOB NOT NULL CHECK (length(previous_hash) = 32),
                hash BLOB NOT NULL CHECK (length(hash) = 32)
            );
            INSERT INTO audit_log_v3
                SELECT sequence, steward_uuid(id), at, actor, action, target_type, target_id, outcome, details,
                    previous_hash, hash
                FROM audit_log;
            DROP TABLE confirmations;
            DROP TABLE consent_state;
            DROP TABLE consent_events;
            DROP TABLE identities;
            DROP TABLE subjects;
            DROP TABLE api_keys;
            DROP TABLE audit_log;
            ALTER TABLE subjects_v3 RENAME TO subjects;
            ALTER TABLE identities_v3 RENAME TO identities;
            ALTER TABLE consent_events_v3 RENAME TO consent_events;
            ALTER TABLE consent_state_v3 RENAME TO consent_state;
            ALTER TABLE confirmations_v3 RENAME TO confirmations;
            ALTER TABLE api_keys_v3 RENAME TO api_keys;
            ALTER TABLE audit_log_v3 RENAME TO audit_log;
            CREATE INDEX identities_subject ON identities (subject_id);
            CREATE INDEX consent_state_audience ON consent_state (purpose, status, subject_id);
            """
        ),
        (
            4,
            """
            -- The same CHECK constraints, written without IN lists. SQLite evaluates `x IN (a, b, c)` by
            -- building a temporary B-tree of the list on every execution, so each insert into
            -- identities, consent_events and consent_state opened and closed throwaway tables (about a
            -- sixth of the import's CPU). An OR of equalities accepts exactly the same values.
            -- Changing a CHECK constraint does not touch stored rows, so this uses SQLite's documented
            -- writable_schema procedure instead of rebuilding the tables; the runner then bumps
            -- schema_version so every connection reloads the schema.
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = replace(sql,
                'kind IN (''email'', ''phone'', ''external_id'', ''device_id'')',
                'kind = ''email'' OR kind = ''phone'' OR kind = ''external_id'' OR kind = ''device_id''')
                WHERE type = 'table' AND name = 'identities';
            UPDATE sqlite_schema SET sql = replace(sql,
                'decision IN (''granted'', ''denied'', ''withdrawn'')',
                'decision = ''granted'' OR decision = ''denied'' OR decision = ''withdrawn''')
                WHERE type = 'table' AND name = 'consent_events';
            UPDATE sqlite_schema SET sql = replace(sql,
                'status IN (''pending'', ''granted'', ''denied'', ''withdrawn'')',
                'status = ''pending'' OR status = ''granted'' OR status = ''denied'' OR status = ''withdrawn''')
                WHERE type = 'table' AND name IN ('consent_events', 'consent_state');
            PRAGMA writable_schema = OFF;
            """
        ),
        (
            5,
            """
            -- A grant imported with proof of an earlier double opt-in confirmation (a migration from
            -- another platform) keeps when the person confirmed, next to the event that records it.
            ALTER TABLE consent_events ADD COLUMN confirmed_at INTEGER;
            """
        ),
        (
            6,
            """
            -- Durable jobs (ADR 0010): every long task — imports, data subject requests, sweeps, key
            -- rotations, webhook deliveries — is a row leased by one runner at a time. The payload,
            -- cursor and result hold ids and counts, never personal values.
            CREATE TABLE jobs (
                id BLOB PRIMARY KEY CHECK (length(id) = 16),
                kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
                idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
                state TEXT NOT NULL CHECK (state = 'queued' OR state = 'running' OR state = 'succeeded'
                    OR state = 'needs_attention' OR state = 'cancelled'),
                payload TEXT NOT NULL,
                cursor TEXT,
                progress_done INTEGER NOT NULL DEFAULT 0 CHECK (progress_done >= 0),
                progress_total INTEGER CHECK (progress_total >= 0),
                result TEXT,
                last_error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
                run_after INTEGER NOT NULL,
                lease_id BLOB CHECK (length(lease_id) = 16),
                lease_owner TEXT,
                lease_expires_at INTEGER,
                cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested = 0 OR cancel_requested = 1),
                created_by TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                UNIQUE (kind, idempotency_key),
                CHECK ((state = 'running') = (lease_id IS NOT NULL)),
                CHECK ((lease_id IS NULL) = (lease_expires_at IS NULL))
            );
            CREATE INDEX jobs_queued ON jobs (run_after) WHERE state = 'queued';
            CREATE INDEX jobs_running ON jobs (lease_expires_at) WHERE state = 'running';
            CREATE INDEX jobs_created ON jobs (created_at, id);
            -- One row per one-at-a-time kind while a job of it holds the kind: the lock is the row.
            CREATE TABLE job_locks (
                name TEXT PRIMARY KEY,
                job_id BLOB NOT NULL CHECK (length(job_id) = 16),
                lease_id BLOB NOT NULL CHECK (length(lease_id) = 16),
                expires_at INTEGER NOT NULL
            );
            """
        ),
        (
            7,
            """
            -- Data subject requests (issue 18, ADR 0011): ids, statuses and dates; the person's
            -- identities stay sealed with their subject. Dates of the statutory clock are stored as
            -- computed at intake, so a later change of requests.yaml does not move a deadline.
            CREATE TABLE dsr_requests (
                id BLOB PRIMARY KEY CHECK (length(id) = 16),
                type TEXT NOT NULL,
                regime TEXT NOT NULL,
                status TEXT NOT NULL,
                subject_id BLOB NOT NULL CHECK (length(subject_id) = 16),
                received_at INTEGER NOT NULL,
                received_on TEXT NOT NULL,
                due_on TEXT NOT NULL,
                due_at INTEGER NOT NULL,
                acknowledge_on TEXT,
                acknowledge_by INTEGER,
                extended_on TEXT,
                extension_reason TEXT,
                verification TEXT,
                denial TEXT,
                agent TEXT,
                submitted_by TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                finished_at INTEGER
            );
            CREATE INDEX dsr_requests_due ON dsr_requests (due_at, id);
            CREATE INDEX dsr_requests_subject ON dsr_requests (subject_id);
            """
        ),
        (
            8,
            """
            -- Each system's part of a request: its job, and once done its receipt (counts and names)
            -- and, for access, the rows read, sealed under the field key.
            CREATE TABLE dsr_tasks (
                request_id BLOB NOT NULL REFERENCES dsr_requests (id) CHECK (length(request_id) = 16),
                system TEXT NOT NULL,
                job_id BLOB NOT NULL CHECK (length(job_id) = 16),
                state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
                receipt TEXT,
                sealed_rows BLOB,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (request_id, system)
            );
            """
        ),
        (
            9,
            """
            -- What is kept of an erased person: one keyed hash (the blind index) per identity, with
            -- the erasure's request, to recognise them in a restored system (reapply-erasures).
            CREATE TABLE suppressions (
                kind TEXT NOT NULL,
                blind_index BLOB NOT NULL CHECK (length(blind_index) = 16),
                request_id BLOB NOT NULL CHECK (length(request_id) = 16),
                erased_at INTEGER NOT NULL,
                PRIMARY KEY (kind, blind_index)
            );
            CREATE INDEX suppressions_erased ON suppressions (erased_at);
            """
        ),
        (
            10,
            """
            -- Identity verification tokens of data subject requests: the SHA-256 of the token only,
            -- single-use (used_at), until expires_at.
            CREATE TABLE dsr_tokens (
                token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
                request_id BLOB NOT NULL REFERENCES dsr_requests (id) CHECK (length(request_id) = 16),
                expires_at INTEGER NOT NULL,
                used_at INTEGER
            );
            CREATE INDEX dsr_tokens_request ON dsr_tokens (request_id);
            """
        ),
        (
            11,
            """
            -- A request's personal particulars (a rectification's corrected values, identities given
            -- as SHA-256), sealed under the field key while it is open; deleted when it finishes.
            CREATE TABLE dsr_details (
                request_id BLOB PRIMARY KEY REFERENCES dsr_requests (id) CHECK (length(request_id) = 16),
                sealed BLOB NOT NULL
            );
            -- Download links to export packages, for the person: the SHA-256 of the token only; a link
            -- works while its package does.
            CREATE TABLE dsr_links (
                token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
                request_id BLOB NOT NULL REFERENCES dsr_requests (id) CHECK (length(request_id) = 16),
                created_at INTEGER NOT NULL
            );
            CREATE INDEX dsr_links_request ON dsr_links (request_id);
            -- Open work, for the callback deadline's sweep: the index holds pending tasks only.
            CREATE INDEX dsr_tasks_pending ON dsr_tasks (updated_at) WHERE state = 'pending';
            """
        ),
        (
            12,
            """
            -- The change feed of the consent check's answers (ADR 0013): per committed transaction
            -- that changed one, a position taken from answer_feed under its row lock (so positions
            -- commit in order), and what changed: a subject, or an identity by kind and the first
            -- 8 bytes of its blind index, or (both NULL) everything. Pruned after minutes.
            CREATE TABLE answer_feed (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                position INTEGER NOT NULL
            );
            INSERT INTO answer_feed (id, position) VALUES (1, 0);
            CREATE TABLE answer_changes (
                position INTEGER NOT NULL,
                subject_id BLOB CHECK (subject_id IS NULL OR length(subject_id) = 16),
                identity_kind TEXT,
                identity_tag INTEGER,
                recorded_at INTEGER NOT NULL
            );
            CREATE INDEX answer_changes_position ON answer_changes (position);
            """
        ),
    ]
}
