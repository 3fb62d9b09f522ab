public import Foundation
public import Logging
public import StewardCore
import Synchronization

/// One kind of durable work: its stable name, its payload and cursor (JSON, no personal values), and
/// how a job of it runs. Register handlers with a `JobRunner`; enqueue with a `JobQueue`.
public protocol JobHandler: Sendable {
    associatedtype Payload: Codable & Sendable
    associatedtype Cursor: Codable & Sendable
    associatedtype Summary: Codable & Sendable
    /// The stable name stored with each job (`consent.import`, `dsr.erase`, …).
    static var kind: String { get }
    /// At most one job of this kind runs at a time across every instance (a sweep).
    static var oneAtATime: Bool { get }
    /// Attempts before the job needs an operator's attention.
    static var maxAttempts: Int { get }
    /// Runs the job from `job.cursor` (nil: from the start). Write work through `job.checkpoint`,
    /// which commits it with the cursor under the lease, and return the result's summary.
    func run(_ job: JobExecution<Self>) async throws -> Summary
}

extension JobHandler {
    public static var oneAtATime: Bool { false }
    public static var maxAttempts: Int { 10 }
}

/// Why a job stopped before its end, thrown from `JobExecution.checkpoint` after its work committed.
public enum JobStop: Error, Sendable, Equatable {
    /// An operator cancelled the job.
    case cancelled
    /// The runner is stopping: the job is handed back and resumes from its cursor.
    case shutdown
}

/// A handler's "not yet": the job waits for other work (a request's task waits for the systems that
/// find their rows through its system's). It is queued again after `delay` seconds; the attempt is
/// not counted, and `reason` is shown as its last error.
public struct JobWait: Error, Sendable {
    public var delay: TimeInterval
    public var reason: String
    public init(delay: TimeInterval, reason: String) {
        self.delay = delay
        self.reason = reason
    }
}

/// A failure a handler reports as permanent: no retry helps (a missing file, a payload that does not
/// decode). The job needs attention at once instead of backing off.
public struct JobPermanentFailure: Error, Sendable {
    public var error: StewardError
    public init(_ error: StewardError) { self.error = error }
}

/// What a running handler sees: its payload, where it stands, and the fenced checkpoint.
public final class JobExecution<Handler: JobHandler>: Sendable {
    public let record: JobRecord
    public let payload: Handler.Payload
    let leaseID: UUID
    let store: any StewardStore
    let runtime: Runtime
    let leaseDuration: Duration
    let control: JobControl
    private let position: Mutex<(cursor: Handler.Cursor?, done: Int64, total: Int64?)>

    init(
        record: JobRecord, payload: Handler.Payload, cursor: Handler.Cursor?, store: any StewardStore,
        runtime: Runtime, leaseDuration: Duration, control: JobControl
    ) throws {
        self.record = record
        self.payload = payload
        self.leaseID = try record.leaseID.orThrow(StoreError.integrity("jobs.lease_id missing on a leased job"))
        self.store = store
        self.runtime = runtime
        self.leaseDuration = leaseDuration
        self.control = control
        self.position = Mutex((cursor, record.progressDone, record.progressTotal))
    }

    /// The cursor of the last committed checkpoint (nil before the first).
    public var cursor: Handler.Cursor? { position.withLock { $0.cursor } }

    /// Commits `work` together with the new cursor and progress, under the lease: if the lease was
    /// lost, nothing of it commits (`JobLeaseLost`). Afterwards throws `JobStop` when the job was
    /// cancelled or the runner is stopping — the work is safely behind the cursor by then.
    public func checkpoint<T: Sendable>(
        cursor: Handler.Cursor, done: Int64, total: Int64?,
        _ work: @escaping @Sendable (any StoreTransaction) async throws -> T
    ) async throws -> T {
        let text = try JobCoding.encode(cursor)
        let id = record.id
        let leaseID = self.leaseID
        let now = runtime.now()
        let expires = now.addingTimeInterval(leaseDuration.seconds)
        let (value, cancelRequested) = try await store.write { transaction in
            let value = try await work(transaction)
            let beat = try await transaction.heartbeatJob(
                id: id, leaseID: leaseID, expiresAt: expires, progressDone: done, progressTotal: total, cursor: text,
                now: now)
            return (value, beat.cancelRequested)
        }
        position.withLock { $0 = (cursor, done, total) }
        if cancelRequested { control.requestCancel() }
        if let stop = control.stop { throw stop }
        return value
    }

    /// A checkpoint with no other work: records where the job stands.
    public func checkpoint(cursor: Handler.Cursor, done: Int64, total: Int64?) async throws {
        try await checkpoint(cursor: cursor, done: done, total: total) { _ in () }
    }

    var progress: (done: Int64, total: Int64?) { position.withLock { ($0.done, $0.total) } }
}

/// Signals between the runner and one running job.
final class JobControl: Sendable {
    private let state = Mutex<(cancel: Bool, shutdown: Bool, lost: Bool)>((false, false, false))
    func requestCancel() { state.withLock { $0.cancel = true } }
    func requestShutdown() { state.withLock { $0.shutdown = true } }
    func markLost() { state.withLock { $0.lost = true } }
    var lost: Bool { state.withLock { $0.lost } }
    var stop: JobStop? {
        state.withLock { $0.cancel ? .cancelled : $0.shutdown ? .shutdown : nil }
    }
}

/// Wakes a runner at once when a job is enqueued in this process (other instances poll).
/// One runner waits on a wake-up at a time.
public final class JobWakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// The current wait returned (by a timeout) before its waiter registered: it must not wait.
        var abandoned = false
    }
    private let state = Mutex(State())

    public init() {}

    /// Wakes the waiting runner, or the next one to wait.
    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at a signal (or one that came since the last wait), or after `timeout`.
    public func wait(upTo timeout: Duration) async {
        state.withLock { $0.abandoned = false }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if state.pending || state.abandoned {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    // Woken by a signal first: the first task has returned and this one was cancelled.
                }
            }
            await group.next()
            // Whichever returned first, the other must end too: a waiter still registered is
            // resumed, and one not registered yet (a timeout that came first) will not wait.
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.abandoned = true
                return state.waiter.take()
            }?.resume()
            group.cancelAll()
        }
    }
}

/// Enqueues, cancels and retries jobs, and wakes this process's runner.
public struct JobQueue: Sendable {
    public let store: any StewardStore
    let runtime: Runtime
    let wakeup: JobWakeup?

    public init(store: any StewardStore, runtime: Runtime, wakeup: JobWakeup? = nil) {
        self.store = store
        self.runtime = runtime
        self.wakeup = wakeup
    }

    /// A job of `Handler`'s kind, to be enqueued alone or inside another change's transaction.
    public func job<Handler: JobHandler>(
        _ handler: Handler.Type, payload: Handler.Payload, idempotencyKey: String? = nil, actor: String,
        runAfter: Date? = nil
    ) throws -> JobRecord {
        let now = runtime.nowMicros()
        return JobRecord.new(
            id: runtime.newID(), kind: Handler.kind, idempotencyKey: idempotencyKey,
            payload: try JobCoding.encode(payload), maxAttempts: Handler.maxAttempts, runAfter: runAfter ?? now,
            createdBy: actor, now: now)
    }

    /// Enqueues a job in its own transaction with its audit entry, then wakes the local runner.
    /// Enqueuing the same idempotency key again returns the existing job (`created` false).
    @discardableResult
    public func enqueue<Handler: JobHandler>(
        _ handler: Handler.Type, payload: Handler.Payload, idempotencyKey: String? = nil, actor: String,
        audit: AuditLog? = nil
    ) async throws -> (job: JobRecord, created: Bool) {
        let job = try self.job(handler, payload: payload, idempotencyKey: idempotencyKey, actor: actor)
        let result = try await store.write { transaction in
            let result = try await transaction.enqueueJob(job)
            if result.created, let audit {
                try await audit.append(
                    [
                        AuditDraft(
                            actor: actor, action: "job.enqueued", targetType: "job",
                            targetID: result.job.id.lowercasedString, details: ["kind": job.kind])
                    ], in: transaction)
            }
            return result
        }
        if result.created { wake() }
        return result
    }

    /// Wakes the local runner (after a transaction that enqueued jobs commits).
    public func wake() { wakeup?.signal() }

    public func cancel(id: UUID, actor: String, audit: AuditLog) async throws -> JobRecord {
        let now = runtime.nowMicros()
        return try await store.write { transaction in
            guard let before = try await transaction.job(id: id) else {
                throw StewardError(.jobNotFound, "no job has this id")
            }
            guard let after = try await transaction.cancelJob(id: id, now: now) else {
                throw StewardError(.jobNotFound, "no job has this id")
            }
            if after.state != before.state || after.cancelRequested != before.cancelRequested {
                try await audit.append(
                    [
                        AuditDraft(
                            actor: actor, action: "job.cancelled", targetType: "job", targetID: id.lowercasedString,
                            details: ["kind": after.kind, "state": after.state.rawValue])
                    ], in: transaction)
            }
            return after
        }
    }

    public func retry(id: UUID, actor: String, audit: AuditLog) async throws -> JobRecord {
        let now = runtime.nowMicros()
        let job = try await store.write { transaction in
            guard let before = try await transaction.job(id: id) else {
                throw StewardError(.jobNotFound, "no job has this id")
            }
            guard before.state == .needsAttention || before.state == .cancelled else {
                throw StewardError(.jobNotRetryable, "only a job that needs attention or was cancelled can be retried")
            }
            guard let after = try await transaction.retryJob(id: id, now: now) else {
                throw StewardError(.jobNotFound, "no job has this id")
            }
            try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "job.retried", targetType: "job", targetID: id.lowercasedString,
                        details: ["kind": after.kind])
                ], in: transaction)
            return after
        }
        wake()
        return job
    }
}

/// JSON for payloads, cursors and summaries: sorted keys, so equal values are equal text.
public enum JobCoding {
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String, field: String) throws(StewardError)
        -> T
    {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StewardError(
                .jobUndecodable, "the job's \(field) does not decode as its kind's \(field)", field: field)
        }
    }
}

extension Optional {
    func orThrow(_ error: some Error) throws -> Wrapped {
        guard let self else { throw error }
        return self
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
