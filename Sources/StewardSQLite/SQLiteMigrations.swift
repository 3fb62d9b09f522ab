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
    ]
}
