public import Foundation
import SQLiteDriver
public import StewardCore
public import StewardServices
import CSQLite
public import ServiceLifecycle
import Synchronization

/// The embedded store: one SQLite file in WAL mode. Readers use a pool of read-only connections;
/// writes go through one connection with group commit — writes that arrive while a transaction is
/// committing are applied together in the next one, each in its own savepoint, so one durable fsync
/// acknowledges many writes and one failing write never affects another.
///
/// The writer is a `Service`: in `steward serve` it runs in the one service group, drains the queue
/// on its own task, and on graceful shutdown — after the HTTP server and the job runner above it have
/// stopped — commits what is queued, then refuses further writes, so the process never exits with an
/// acknowledged write unapplied. A one-shot command that does not run it gets a drain task per burst
/// of writes, as before.
public final class SQLiteStore: StewardStore, Service {
    public let path: String
    public var backendName: String { "sqlite" }

    private let writer: Mutex<WriterState>
    private let readers = Mutex<[ConnectionLease]>([])
    private let writerConnection: ConnectionLease
    private let checkpointer = Mutex<ConnectionLease?>(nil)

    struct PendingWrite: Sendable {
        /// Migrations and operator SQL: committed alone, with foreign keys off (table rebuilds need it;
        /// `migrate()` runs `PRAGMA foreign_key_check` before it commits).
        let exclusive: Bool
        let body: @Sendable (SQLiteSession) async throws -> Void
        let complete: @Sendable (Result<Void, any Error>) -> Void
    }

    enum DrainStart { case none, service, task, refused }

    struct WriterState: ~Copyable {
        var pending: [PendingWrite] = []
        /// A drain is due or running; no other may start.
        var draining = false
        /// The running writer service, woken when a drain is due (nil: one-shot drain tasks).
        var service: AsyncStream<Void>.Continuation?
        /// The writer service stopped: every write is refused.
        var stopped = false
    }

    /// Wraps a connection so it can be handed between tasks; only one task uses it at a time.
    final class ConnectionLease: @unchecked Sendable {
        let connection: SQLiteConnection
        init(_ connection: SQLiteConnection) { self.connection = connection }
    }

    /// Opens (creating if needed) the database file. Call `migrate()` before use.
    public init(path: String) throws {
        self.path = path
        self.writerConnection = ConnectionLease(try SQLiteConnection.store(path: path, readOnly: false, role: .writer))
        self.writer = Mutex(WriterState())
    }

    @discardableResult
    public func migrate() async throws -> Int {
        try await write(migrating: true) { session in
            let connection = session.connection
            try connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            let applied = Set(try connection.query("SELECT version FROM schema_migrations") { Int($0.int(0)) })
            var count = 0
            for migration in SQLiteMigrations.all where !applied.contains(migration.version) {
                try connection.execute(migration.sql)
                // DDL moves the schema cookie by itself; a migration that edits the schema's text
                // (writable_schema, migration 4) does not, and SQLite's procedure then requires it so
                // every connection reloads the schema. Harmless after the others.
                let version = try connection.query("PRAGMA schema_version") { $0.int(0) }.first ?? 0
                try connection.execute("PRAGMA schema_version = \(version + 1)")
                try connection.run(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    [.int(Int64(migration.version)), .time(Date())])
                count += 1
            }
            if count > 0 {
                let broken = try connection.query("PRAGMA foreign_key_check") { $0.text(0) }
                if let table = broken.first {
                    throw SQLiteError(
                        code: SQLITE_CONSTRAINT,
                        message: "migration left \(broken.count) dangling references (first in \(table))")
                }
                // The check above read every table through the writer's page cache. Hand those pages
                // back, or a server that migrated at start keeps them resident (60 MB at 1M subjects).
                connection.releaseMemory()
            }
            return count
        }
    }

    /// Runs raw SQL on the writer connection outside the group-commit queue. For tests and operator
    /// tooling only (tamper drills); never called by the service.
    @_spi(Testing)
    public func unsafeExecute(_ sql: String) async throws {
        try await write(migrating: true) { session in try session.connection.execute(sql) }
    }

    /// Runs a raw query on the writer connection and returns one column of every row as text. For tests
    /// only (schema and query-plan assertions).
    @_spi(Testing)
    public func unsafeQuery(_ sql: String, column: Int32 = 0) async throws -> [String] {
        try await write(migrating: true) { session in try session.connection.query(sql) { $0.text(column) } }
    }

    /// Copies committed WAL frames into the database file on a connection of its own (PASSIVE: never
    /// blocks the writer or readers). Run by `StoreMaintenance` while serving, so commits do not pay
    /// for checkpoints; the writer's own automatic checkpoint (10,000 pages) is the backstop. A
    /// checkpoint writes and syncs the database file for up to hundreds of milliseconds, so it runs on
    /// a thread outside Swift's cooperative pool, whose few threads serve requests and the writer.
    public func maintain() async throws {
        let lease = try checkpointer.withLock { lease in
            if let lease { return lease }
            let created = ConnectionLease(try SQLiteConnection.store(path: path, readOnly: false, role: .checkpointer))
            lease = created
            return created
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global(qos: .utility).async {
                continuation.resume(with: Result { try lease.connection.execute("PRAGMA wal_checkpoint(PASSIVE)") })
            }
        }
    }

    /// Scans the two B-trees every check descends (identities by blind index, consent state by
    /// subject) on reader connections of their own, on threads outside Swift's cooperative pool: the
    /// OS page cache then holds them. Columns no index covers are named, so SQLite reads the tables.
    public func warm() async throws -> Int? {
        let stop = StopFlag()
        return try await withTaskCancellationHandler {
            async let identities = scanOffPool("SELECT created_at FROM identities", stop: stop)
            async let states = scanOffPool("SELECT decided_at FROM consent_state", stop: stop)
            return try await identities + states
        } onCancel: {
            stop.raise()
        }
    }

    final class StopFlag: Sendable {
        private let value = Atomic<Bool>(false)
        func raise() { value.store(true, ordering: .relaxed) }
        var isRaised: Bool { value.load(ordering: .relaxed) }
    }

    private func scanOffPool(_ sql: String, stop: StopFlag) async throws -> Int {
        let path = self.path
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .utility).async {
                continuation.resume(
                    with: Result {
                        let connection = try SQLiteConnection.store(path: path, readOnly: true, role: .reader)
                        return try connection.scan(sql) { stop.isRaised }
                    })
            }
        }
    }

    public func ping() async throws {
        try withReader { _ = try $0.query("SELECT 1") { $0.int(0) } }
    }

    public func inventory() async throws -> StoreInventory {
        try withReader { connection in
            let empty = StoreInventory(schemaVersion: 0, holdsData: false, keyChecks: [:], sampleIdentity: nil)
            let hasTable =
                try connection.query(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                ) { $0.int(0) }.first ?? 0
            guard hasTable > 0 else { return empty }
            let version = Int(try connection.query("SELECT count(*) FROM schema_migrations") { $0.int(0) }.first ?? 0)
            guard version > 0 else { return empty }
            let holdsData =
                try connection.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM api_keys)
                        OR EXISTS (SELECT 1 FROM audit_log)
                    """
                ) { $0.int(0) }.first == 1
            let prefix = KeyBinding.settingKey("")
            let checks = try connection.query(
                "SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1", [.text(prefix)]
            ) { (String($0.text(0).dropFirst(prefix.count)), $0.text(1)) }
            let sample = try connection.query(
                "SELECT id, subject_id, kind, blind_index, ciphertext, created_at FROM identities ORDER BY created_at, id LIMIT 1"
            ) { row in
                IdentityRecord(
                    id: try row.uuid(0), subjectID: try row.uuid(1),
                    kind: try StoreError.stored(IdentityKind.self, row.text(2), column: "identities.kind"),
                    blindIndex: row.blob(3), ciphertext: row.blob(4), createdAt: row.time(5))
            }.first
            return StoreInventory(
                schemaVersion: version, holdsData: holdsData, keyChecks: Dictionary(uniqueKeysWithValues: checks),
                sampleIdentity: sample)
        }
    }

    // MARK: Reads

    /// A pooled read-only connection (a new one when all are in use); give it back with `returnReader`.
    private func takeReader() throws -> ConnectionLease {
        try readers.withLock { $0.popLast() }
            ?? ConnectionLease(SQLiteConnection.store(path: path, readOnly: true, role: .reader))
    }

    private func returnReader(_ lease: ConnectionLease) { readers.withLock { $0.append(lease) } }

    private func withReader<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let lease = try takeReader()
        defer { returnReader(lease) }
        return try body(lease.connection)
    }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        let lease = try takeReader()
        defer { returnReader(lease) }
        return try await body(SQLiteSession(connection: lease.connection))
    }

    public func subjectStates(kind: IdentityKind, blindIndex: Data) async throws -> SubjectStates? {
        try withReader { connection in
            SubjectStates.grouping(
                try connection.query(
                    SQLiteSession.subjectStatesQuery + " = ?", [.text(kind.rawValue), .blob(blindIndex)],
                    SQLiteSession.subjectStateRow)
            )[blindIndex]
        }
    }

    public func answerChanges(after position: Int64, limit: Int) async throws -> AnswerFeedPage {
        try withReader { connection in
            try AnswerFeedPage.reading(
                try connection.query(
                    """
                    SELECT position, subject_id, identity_kind, identity_tag FROM answer_changes
                    WHERE position > ? ORDER BY position LIMIT ?
                    """, [.int(position), .int(Int64(limit))]
                ) { row in
                    (row.int(0), try row.optionalUUID(1), row.optionalText(2), row.isNull(3) ? nil : row.int(3))
                }, after: position, limit: limit)
        }
    }

    public func pruneAnswerChanges(before date: Date) async throws {
        try await write(migrating: false) { session in
            try session.connection.run("DELETE FROM answer_changes WHERE recorded_at < ?", [.time(date)])
        }
    }

    public func answerFeedPosition() async throws -> Int64 {
        try withReader { connection in
            guard
                let position = try connection.query("SELECT position FROM answer_feed WHERE id = 1", [], { $0.int(0) })
                    .first
            else { throw StoreError.integrity("answer_feed has no row") }
            return position
        }
    }

    /// Writers on the same file from other processes (the CLI's import) are seen by polling.
    public func answerWakeups() -> AsyncStream<Void> { AsyncStream { $0.finish() } }

    private let answerObserver = Mutex<(@Sendable ([AnswerChange]) -> Void)?>(nil)

    public func observeAnswerChanges(_ observer: @escaping @Sendable ([AnswerChange]) -> Void) {
        answerObserver.withLock { $0 = observer }
    }

    public func apiKey(hash: Data) async throws -> (record: APIKeyRecord, storedHash: Data)? {
        try withReader { connection in
            try connection.query(SQLiteSession.apiKeyColumns + " WHERE key_hash = ?", [.blob(hash)]) { row in
                (try SQLiteSession.apiKey(row), row.blob(6))
            }.first
        }
    }

    // MARK: Writes (group commit)

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws
        -> T
    {
        try await write(migrating: false) { try await body($0) }
    }

    private func write<T: Sendable>(
        migrating: Bool, _ body: @escaping @Sendable (SQLiteSession) async throws -> T
    ) async throws -> T {
        let box = ResultBox<T>()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let pending = PendingWrite(
                exclusive: migrating,
                body: { session in box.set(try await body(session)) },
                complete: { continuation.resume(with: $0) })
            let start = writer.withLock { state -> DrainStart in
                if state.stopped { return .refused }
                state.pending.append(pending)
                if state.draining { return .none }
                state.draining = true
                if let service = state.service {
                    service.yield()
                    return .service
                }
                return .task
            }
            switch start {
            case .refused: continuation.resume(throwing: StoreError.unavailable("the store is stopping"))
            case .task: Task { await self.drain() }
            case .none, .service: break
            }
        }
        return box.take()
    }

    /// The writer service: drains the queue whenever a write is due, until graceful shutdown; then
    /// applies what is still queued and refuses later writes.
    public func run() async throws {
        let (wakeups, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        // A drain task started before the service may still run; it ends when the queue is empty and
        // clears `draining`, after which wake-ups come here.
        writer.withLock { $0.service = continuation }
        for await _ in wakeups.cancelOnGracefulShutdown() { await drain() }
        let due = writer.withLock { state -> Bool in
            state.stopped = true
            state.service = nil
            return state.draining && !state.pending.isEmpty
        }
        continuation.finish()
        // A wake-up yielded after the loop ended left `draining` set with no drainer: drain here.
        if due { await drain() }
    }

    /// Applies queued writes batch by batch until the queue is empty.
    private func drain() async {
        let connection = writerConnection.connection
        while true {
            let batch = writer.withLock { state -> [PendingWrite] in
                let batch: [PendingWrite]
                if let first = state.pending.first, first.exclusive {
                    batch = [first]
                } else {
                    batch = Array(state.pending.prefix(512).prefix { !$0.exclusive })
                }
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            var results: [Result<Void, any Error>] = []
            results.reserveCapacity(batch.count)
            let exclusive = batch[0].exclusive
            do {
                // The pragma is a no-op inside a transaction, so it is set before BEGIN.
                if exclusive { try connection.execute("PRAGMA foreign_keys = OFF") }
                try connection.run("BEGIN IMMEDIATE")
            } catch {
                if exclusive { try? connection.execute("PRAGMA foreign_keys = ON") }
                for item in batch { item.complete(.failure(error)) }
                continue
            }
            defer { if exclusive { try? connection.execute("PRAGMA foreign_keys = ON") } }
            // Each write notes what it changed for the consent check, published with it (ADR 0013).
            let logs = batch.map { _ in AnswerChangeLog() }
            if batch.count == 1 {
                // A lone write needs no savepoint: the transaction is its rollback unit. (A savepoint
                // around a large write journals every page it touches.)
                do {
                    let session = SQLiteSession(connection: connection, answers: logs[0])
                    try await batch[0].body(session)
                    try session.publishAnswerChanges()
                    results.append(.success(()))
                } catch {
                    try? connection.execute("ROLLBACK")
                    batch[0].complete(.failure(error))
                    continue
                }
            } else {
                for (item, log) in zip(batch, logs) {
                    do {
                        try connection.run("SAVEPOINT write")
                        do {
                            let session = SQLiteSession(connection: connection, answers: log)
                            try await item.body(session)
                            try connection.run("RELEASE write")
                            results.append(.success(()))
                        } catch {
                            try connection.run("ROLLBACK TO write")
                            try connection.run("RELEASE write")
                            results.append(.failure(error))
                        }
                    } catch {
                        results.append(.failure(error))
                    }
                }
                // The writes that stand publish together, at one position: one feed row update per
                // group commit rather than per write.
                let standing = zip(logs, results).compactMap { log, result -> AnswerChangeLog? in
                    if case .success = result { return log } else { return nil }
                }
                do {
                    try SQLiteSession(connection: connection).publish(AnswerChange.merged(standing.map(\.published)))
                } catch {
                    try? connection.execute("ROLLBACK")
                    for item in batch { item.complete(.failure(error)) }
                    continue
                }
            }
            do {
                try connection.run("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                results = results.map { $0.flatMap { .failure(error) } }
            }
            // This instance's cache is current before any write of the batch is acknowledged.
            if let observer = answerObserver.withLock({ $0 }) {
                for (log, result) in zip(logs, results) where !log.isEmpty {
                    if case .success = result { observer(log.published) }
                }
            }
            for (item, result) in zip(batch, results) { item.complete(result) }
        }
    }
}

/// Holds a write's result between the drain task and the waiting caller.
final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ value: T) { lock.withLock { self.value = value } }
    func take() -> T { lock.withLock { value.take()! } }
}
