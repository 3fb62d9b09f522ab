public import Foundation
public import StewardCore

/// What `jobs(…)` lists: newest first, optionally of some states or one kind.
public struct JobFilter: Sendable, Hashable {
    public var states: Set<JobState>
    public var kind: String?
    /// Jobs created before this one (the previous page's last id), for paging newest first.
    public var before: UUID?
    public var limit: Int

    public init(states: Set<JobState> = [], kind: String? = nil, before: UUID? = nil, limit: Int = 100) {
        self.states = states
        self.kind = kind
        self.before = before
        self.limit = limit
    }
}

/// A lease a runner takes on the jobs it runs: its id fences every later write of the job (a runner
/// whose lease expired and was taken by another can no longer change the job or commit its work).
public struct JobLease: Sendable, Hashable {
    public var owner: String
    public var expiresAt: Date

    public init(owner: String, expiresAt: Date) {
        self.owner = owner
        self.expiresAt = expiresAt
    }
}

/// A lease that is no longer held: it expired and another runner took the job, or the job was
/// finished or released. The work written under it is rolled back with it.
public struct JobLeaseLost: Error, Sendable, Equatable {
    public var jobID: UUID
    public init(jobID: UUID) { self.jobID = jobID }
}

/// Reads of the job queue.
public protocol JobQueueReading: Sendable {
    func job(id: UUID) async throws -> JobRecord?
    func jobs(_ filter: JobFilter) async throws -> [JobRecord]
    /// How many jobs there are per kind and state (for metrics and `jobs list`'s summary).
    func jobCounts() async throws -> [(kind: String, state: JobState, count: Int)]
}

/// Writes of the job queue, inside a store transaction — so a job is enqueued with the change that
/// calls for it, and a job's work commits with its cursor, fenced by its lease.
///
/// Correctness rests on row leases and transactions only: on PostgreSQL the lease takes candidate
/// rows `FOR UPDATE SKIP LOCKED`, so concurrent runners never take the same job; on SQLite the one
/// writer serialises leases. One-at-a-time kinds hold a row of `job_locks`, not an advisory lock.
public protocol JobQueueWriting: JobQueueReading {
    /// Inserts `job` unless a job of its kind with its idempotency key exists; returns the stored job
    /// and whether it is the one just inserted.
    func enqueueJob(_ job: JobRecord) async throws -> (job: JobRecord, created: Bool)
    /// Leases up to `limit` runnable jobs of `kinds`, oldest `runAfter` first: queued ones due by
    /// `now`, and running ones whose lease expired (their runner died). A job of a kind in
    /// `oneAtATime` is leased only when no other job of its kind holds that kind's lock row.
    /// Each leased job gets a fresh `leaseID` from `newLeaseID` and one more attempt.
    func leaseJobs(
        kinds: [String], oneAtATime: Set<String>, limit: Int, lease: JobLease, now: Date,
        newLeaseID: @Sendable () -> UUID
    ) async throws -> [JobRecord]
    /// Leases one job by id, when it is queued (due or not) or its lease expired: for a job its
    /// enqueuer runs itself (an import, run by the command that enqueued it). Nil when another
    /// runner holds a live lease on it, or it is finished, needs attention or does not exist.
    func leaseJob(id: UUID, lease: JobLease, now: Date, leaseID: UUID) async throws -> JobRecord?
    /// Extends the lease and records progress (and the cursor, when given). Throws `JobLeaseLost`
    /// when the lease is no longer held — taken by another runner, or expired by `now` even if no one
    /// took it yet (so a runner that stalled past its lease never runs beside the next one of a
    /// one-at-a-time kind); returns whether an operator asked to cancel the job. Called in the
    /// transaction of the work it checkpoints, it fences that work: lost lease, nothing committed.
    func heartbeatJob(
        id: UUID, leaseID: UUID, expiresAt: Date, progressDone: Int64, progressTotal: Int64?, cursor: String?,
        now: Date
    ) async throws -> (cancelRequested: Bool, record: JobRecord)
    /// Ends the lease with `finish`. Throws `JobLeaseLost` when the lease is no longer held (as above).
    func finishJob(id: UUID, leaseID: UUID, finish: JobFinish, now: Date) async throws -> JobRecord
    /// Cancels a job: at once when queued or needing attention; a running one is asked to stop at
    /// its next checkpoint. Nil when there is no such job; a finished job is returned unchanged.
    func cancelJob(id: UUID, now: Date) async throws -> JobRecord?
    /// Queues a job that needs attention or was cancelled again, with its attempts reset. Nil when
    /// there is no such job; a job in another state is returned unchanged.
    func retryJob(id: UUID, now: Date) async throws -> JobRecord?
    /// Marks a succeeded job as needing attention with `error`, and clears its cursor (so a retry
    /// starts over): an http system's callback reported that the work its job delivered failed.
    /// Nil when there is no such job; a job in another state is returned unchanged.
    func failSucceededJob(id: UUID, error: String, now: Date) async throws -> JobRecord?
}
