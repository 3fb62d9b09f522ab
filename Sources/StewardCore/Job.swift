public import Foundation

/// Where a durable job is in its life. Stored as its raw value; a value the database holds that is
/// not one of these is an integrity error, never read as a default.
///
/// ```
/// queued ──lease──▶ running ──succeed──▶ succeeded
///   ▲                 │ ├──fail (attempts left)──▶ queued (run_after = now + backoff)
///   │                 │ ├──fail (no attempts left)──▶ needs_attention ──retry──▶ queued
///   │                 │ ├──cancel requested, seen at a checkpoint──▶ cancelled
///   └──release────────┘ └──lease expires (the runner died)──▶ leased again by another runner
/// queued / needs_attention ──cancel──▶ cancelled ──retry──▶ queued
/// ```
public enum JobState: String, Sendable, CaseIterable, Codable, Hashable {
    case queued
    case running
    case succeeded
    case needsAttention = "needs_attention"
    case cancelled

    /// A job in this state will not run again unless an operator retries it.
    public var isFinal: Bool { self == .succeeded || self == .needsAttention || self == .cancelled }
}

/// A job as stored: what to do (kind and payload, never a personal value), where it is (state,
/// cursor, progress), and who holds it (the lease).
public struct JobRecord: Sendable, Hashable {
    public var id: UUID
    public var kind: String
    /// Enqueuing a job of the same kind with the same key yields this job, not a second one.
    public var idempotencyKey: String?
    public var state: JobState
    /// The kind's parameters as JSON: ids and settings, no personal values.
    public var payload: String
    /// Where resumable work stands, as the kind's JSON cursor; written with the work it follows.
    public var cursor: String?
    public var progressDone: Int64
    public var progressTotal: Int64?
    /// The outcome's summary as JSON (counts, ids), once finished.
    public var result: String?
    /// The last failure, as `code: detail` (no personal values).
    public var lastError: String?
    public var attempts: Int
    public var maxAttempts: Int
    /// Not leased before this time (backoff after a failure).
    public var runAfter: Date
    public var leaseID: UUID?
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var cancelRequested: Bool
    public var createdBy: String
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(
        id: UUID, kind: String, idempotencyKey: String?, state: JobState, payload: String, cursor: String?,
        progressDone: Int64, progressTotal: Int64?, result: String?, lastError: String?, attempts: Int,
        maxAttempts: Int, runAfter: Date, leaseID: UUID?, leaseOwner: String?, leaseExpiresAt: Date?,
        cancelRequested: Bool, createdBy: String, createdAt: Date, updatedAt: Date, startedAt: Date?,
        finishedAt: Date?
    ) {
        self.id = id
        self.kind = kind
        self.idempotencyKey = idempotencyKey
        self.state = state
        self.payload = payload
        self.cursor = cursor
        self.progressDone = progressDone
        self.progressTotal = progressTotal
        self.result = result
        self.lastError = lastError
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.leaseID = leaseID
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.cancelRequested = cancelRequested
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// A new queued job.
    public static func new(
        id: UUID, kind: String, idempotencyKey: String?, payload: String, maxAttempts: Int, runAfter: Date,
        createdBy: String, now: Date
    ) -> JobRecord {
        JobRecord(
            id: id, kind: kind, idempotencyKey: idempotencyKey, state: .queued, payload: payload, cursor: nil,
            progressDone: 0, progressTotal: nil, result: nil, lastError: nil, attempts: 0, maxAttempts: maxAttempts,
            runAfter: runAfter, leaseID: nil, leaseOwner: nil, leaseExpiresAt: nil, cancelRequested: false,
            createdBy: createdBy, createdAt: now, updatedAt: now, startedAt: nil, finishedAt: nil)
    }
}

/// How a leased job ends its lease.
public enum JobFinish: Sendable, Hashable {
    /// Done: the result summary (JSON).
    case succeeded(result: String)
    /// Failed; run again after `runAfter` (attempts remain).
    case retry(error: String, runAfter: Date)
    /// Failed and out of attempts: an operator looks at it.
    case needsAttention(error: String)
    /// Stopped at a checkpoint because an operator cancelled it.
    case cancelled
    /// Handed back unfinished (the runner is stopping): queued again at once, the attempt not counted.
    case released
    /// Not runnable yet (it waits for other work): queued again at `until`, the attempt not counted,
    /// the reason shown as its last error.
    case waiting(until: Date, reason: String)

    public var state: JobState {
        switch self {
        case .succeeded: .succeeded
        case .retry, .released, .waiting: .queued
        case .needsAttention: .needsAttention
        case .cancelled: .cancelled
        }
    }
}

/// When a failed job runs again: exponential backoff with full jitter (the AWS architecture blog's
/// "full jitter": a uniform delay between zero and the capped exponential), so jobs that failed
/// together do not retry together.
public enum JobBackoff {
    /// The delay after the `attempt`-th failed attempt (1-based): uniform in
    /// `[base·2^(attempt−1) / 2, base·2^(attempt−1)]`, capped at `cap`. Half the span is kept as a
    /// floor so a retry never comes back at once. `unit` is a random number in [0, 1).
    public static func delay(
        afterAttempt attempt: Int, base: Duration = .seconds(1), cap: Duration = .seconds(3_600), unit: Double
    ) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(base * (1 << exponent), cap)
        let seconds = Double(ceiling.components.seconds) + Double(ceiling.components.attoseconds) / 1e18
        let fraction = 0.5 + 0.5 * min(max(unit, 0), 1)
        return .milliseconds(Int64(seconds * fraction * 1_000))
    }

    /// How a failed attempt ends: another try after the backoff, or an operator's attention when
    /// `attempts` (counting this one) reached `maxAttempts`.
    public static func finish(
        error: String, attempts: Int, maxAttempts: Int, now: Date, unit: Double, base: Duration = .seconds(1),
        cap: Duration = .seconds(3_600)
    ) -> JobFinish {
        guard attempts < maxAttempts else { return .needsAttention(error: error) }
        let wait = delay(afterAttempt: attempts, base: base, cap: cap, unit: unit)
        let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
        return .retry(error: error, runAfter: now.addingTimeInterval(seconds))
    }
}
