public import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
public import PostgresNIO
public import StewardCore
public import StewardServices

/// The scale-out store: many Steward instances over one PostgreSQL (or a Postgres-compatible engine).
/// Everything that must happen once is coordinated in the database: the audit head is taken with
/// `SELECT … FOR UPDATE`, subject ordinals with a row lock, migrations under an advisory lock.
public final class PostgresStore: StewardStore {
    let client: PostgresClient
    let logger: Logger
    public var backendName: String { "postgres" }

    /// The client must be running (`client.run()`) in a task or service group for the store to work.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    @discardableResult
    public func migrate() async throws -> Int {
        // Nothing pending (every start after the first): no lock is taken, so an instance starting
        // does not queue behind others migrating. A version is visible only with its whole migration.
        if try await pendingMigrations() == 0 { return 0 }
        return try await mapped {
            try await client.withTransaction(logger: logger) { connection in
                // Serialises concurrent instances migrating the same database.
                try await connection.query("SELECT pg_advisory_xact_lock(7370001)", logger: self.logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                    logger: self.logger)
                var applied: Set<Int> = []
                for try await version in try await connection.query(
                    "SELECT version FROM schema_migrations", logger: self.logger
                )
                .decode(Int.self) {
                    applied.insert(version)
                }
                var count = 0
                for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                    }
                    let version = migration.version
                    let now = Timestamp.micros(Date())
                    try await connection.query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (\(version), \(now))",
                        logger: self.logger)
                    count += 1
                }
                return count
            }
        }
    }

    /// How many migrations the database lacks (all of them before the first).
    func pendingMigrations() async throws -> Int {
        try await mapped {
            let exists =
                try await client.query(
                    "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
                ).collect().first?.decode(Bool.self) ?? false
            guard exists else { return PostgresMigrations.all.count }
            var applied: Set<Int> = []
            for row in try await client.query("SELECT version FROM schema_migrations", logger: logger).collect() {
                applied.insert(try row.decode(Int.self))
            }
            return PostgresMigrations.all.filter { !applied.contains($0.version) }.count
        }
    }

    /// Runs raw SQL. For tests and operator tooling only (tamper drills); never called by the service.
    @_spi(Testing)
    public func unsafeExecute(_ sql: String) async throws {
        try await mapped { _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect() }
    }

    /// PostgreSQL checkpoints and vacuums on its own.
    public func maintain() async throws {}

    public func warm() async throws -> Int? { nil }

    public func ping() async throws {
        try await mapped { _ = try await client.query("SELECT 1", logger: logger).collect() }
    }

    public func inventory() async throws -> StoreInventory {
        try await mapped {
            try await client.withConnection { connection in
                let empty = StoreInventory(schemaVersion: 0, holdsData: false, keyChecks: [:], sampleIdentity: nil)
                let hasTable =
                    try await connection.query(
                        "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: self.logger
                    ).collect().first?.decode(Bool.self) ?? false
                guard hasTable else { return empty }
                let version =
                    try await connection.query(
                        "SELECT count(*) FROM schema_migrations", logger: self.logger
                    ).collect().first?.decode(Int64.self) ?? 0
                guard version > 0 else { return empty }
                let holdsData =
                    try await connection.query(
                        """
                        SELECT EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM api_keys)
                            OR EXISTS (SELECT 1 FROM audit_log)
                        """, logger: self.logger
                    ).collect().first?.decode(Bool.self) ?? false
                let prefix = KeyBinding.settingKey("")
                var checks: [String: String] = [:]
                for row in try await connection.query(
                    "SELECT key, value FROM settings WHERE left(key, length(\(prefix))) = \(prefix)",
                    logger: self.logger
                ).collect() {
                    let (key, value) = try row.decode((String, String).self)
                    checks[String(key.dropFirst(prefix.count))] = value
                }
                let sample = try await connection.query(
                    "SELECT id, subject_id, kind, blind_index, ciphertext, created_at FROM identities ORDER BY created_at, id LIMIT 1",
                    logger: self.logger
                ).collect().first.map { row in
                    let (id, subject, kind, index, ciphertext, created) = try row.decode(
                        (UUID, UUID, String, Data, Data, Int64).self)
                    return IdentityRecord(
                        id: id, subjectID: subject,
                        kind: try StoreError.stored(IdentityKind.self, kind, column: "identities.kind"),
                        blindIndex: index, ciphertext: ciphertext, createdAt: Timestamp.date(micros: created))
                }
                return StoreInventory(
                    schemaVersion: Int(version), holdsData: holdsData, keyChecks: checks, sampleIdentity: sample)
            }
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try await mapped {
            try await client.withConnection { connection in
                try await body(PostgresSession(connection: connection, logger: self.logger))
            }
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws
        -> T
    {
        let answers = AnswerChangeLog()
        let result = try await mapped {
            try await client.withTransaction(logger: logger) { connection in
                let session = PostgresSession(
                    connection: connection, logger: self.logger, buffer: WriteBuffer(), answers: answers)
                let result = try await body(session)
                try await session.flush()
                try await session.publishAnswerChanges()
                return result
            }
        }
        if !answers.isEmpty {
            answerObserver.withLockedValue { $0 }?(answers.published)
            // Wakes the other instances' followers: a NOTIFY of its own, after the commit (PostgreSQL
            // serialises the commits of every transaction that notifies, across the cluster, so the
            // write's own transaction does not). Only a wake-up: if it fails, a follower's polling
            // interval finds the change.
            _ = try? await client.query("SELECT pg_notify('steward_answers', '')", logger: logger).collect()
        }
        return result
    }

    public func answerFeedPosition() async throws -> Int64 {
        try await mapped {
            guard
                let position = try await client.query(
                    "SELECT position FROM answer_feed WHERE id = 1", logger: logger
                ).collect().first?.decode(Int64.self)
            else { throw StoreError.integrity("answer_feed has no row") }
            return position
        }
    }

    /// NOTIFY steward_answers, heard on one pooled connection held for it (LISTEN), reconnecting
    /// after a failure; a wake-up only — the follower reads the feed itself.
    public func answerWakeups() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let task = Task { [client] in
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        for try await _ in try await connection.listen("steward_answers") { continuation.yield() }
                    }
                } catch {
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private let answerObserver = NIOLockedValueBox<(@Sendable ([AnswerChange]) -> Void)?>(nil)

    public func observeAnswerChanges(_ observer: @escaping @Sendable ([AnswerChange]) -> Void) {
        answerObserver.withLockedValue { $0 = observer }
    }

    public func subjectStates(kind: IdentityKind, blindIndex: Data) async throws -> SubjectStates? {
        var binds = PostgresBindings(capacity: 2)
        binds.append(kind.rawValue)
        binds.append(ByteBuffer(bytes: blindIndex))
        return try await mapped {
            let rows = try await client.query(
                PostgresQuery(unsafeSQL: PostgresSession.subjectStatesQuery + " = $2", binds: binds), logger: logger
            ).collect()
            return SubjectStates.grouping(try rows.map(PostgresSession.subjectStateRow))[blindIndex]
        }
    }

    public func answerChanges(after position: Int64, limit: Int) async throws -> AnswerFeedPage {
        try await mapped {
            let rows = try await client.query(
                """
                SELECT position, subject_id, identity_kind, identity_tag FROM answer_changes
                WHERE position > \(position) ORDER BY position LIMIT \(limit)
                """, logger: logger
            ).collect()
            return try AnswerFeedPage.reading(
                rows.map { row in
                    let (position, subject, kind, tag) = try row.decode((Int64, UUID?, String?, Int64?).self)
                    return (position, subject, kind, tag)
                }, after: position, limit: limit)
        }
    }

    public func pruneAnswerChanges(before date: Date) async throws {
        try await mapped {
            _ = try await client.query(
                "DELETE FROM answer_changes WHERE recorded_at < \(Timestamp.micros(date))", logger: logger
            ).collect()
        }
    }

    public func apiKey(hash: Data) async throws -> (record: APIKeyRecord, storedHash: Data)? {
        let buffer = ByteBuffer(bytes: hash)
        return try await mapped {
            let rows = try await client.query(
                PostgresSession.apiKeyQuery(where: "key_hash = $1", binds: [buffer]), logger: logger
            ).collect()
            return try rows.first.map {
                (try PostgresSession.apiKey($0), try $0.makeRandomAccess()[6].decode(Data.self))
            }
        }
    }

    /// Maps PostgreSQL errors to the store's: unique violations become retryable, the rest opaque.
    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw PostgresSession.map(error)
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? PSQLError { throw PostgresSession.map(inner) }
            if let inner = error.closureError { throw inner }
            for inner in [error.beginError, error.commitError] {
                if let psql = inner as? PSQLError { throw PostgresSession.map(psql) }
            }
            throw StoreError.unavailable("transaction failed")
        }
    }
}
