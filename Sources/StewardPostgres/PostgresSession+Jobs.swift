import Foundation
import PostgresNIO
import StewardCore
import StewardServices

/// The job queue on PostgreSQL. A lease takes its candidates `FOR UPDATE SKIP LOCKED`: concurrent
/// runners each get different rows and never wait on one another; a one-at-a-time kind's lock row is
/// taken with `INSERT … ON CONFLICT DO UPDATE … WHERE`, which PostgreSQL re-checks against the row's
/// latest version after waiting, so two runners cannot both take it. No advisory locks, no
/// LISTEN/NOTIFY: distributed Postgres-compatible engines lack or break them.
extension PostgresSession {
    static let jobColumns = """
        id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total, result, last_error,
        attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at, cancel_requested, created_by,
        created_at, updated_at, started_at, finished_at
        """

    static func job(_ row: PostgresRow) throws -> JobRecord {
        let cells = row.makeRandomAccess()
        guard let state = JobState(rawValue: try cells[3].decode(String.self)) else {
            throw StoreError.integrity("jobs.state holds a value that is not a job state")
        }
        func time(_ index: Int) throws -> Date? { try cells[index].decode(Int64?.self).map(Timestamp.date(micros:)) }
        return JobRecord(
            id: try cells[0].decode(UUID.self), kind: try cells[1].decode(String.self),
            idempotencyKey: try cells[2].decode(String?.self), state: state, payload: try cells[4].decode(String.self),
            cursor: try cells[5].decode(String?.self), progressDone: try cells[6].decode(Int64.self),
            progressTotal: try cells[7].decode(Int64?.self), result: try cells[8].decode(String?.self),
            lastError: try cells[9].decode(String?.self), attempts: Int(try cells[10].decode(Int32.self)),
            maxAttempts: Int(try cells[11].decode(Int32.self)),
            runAfter: Timestamp.date(micros: try cells[12].decode(Int64.self)),
            leaseID: try cells[13].decode(UUID?.self), leaseOwner: try cells[14].decode(String?.self),
            leaseExpiresAt: try time(15), cancelRequested: try cells[16].decode(Bool.self),
            createdBy: try cells[17].decode(String.self), createdAt: try time(18) ?? Date(timeIntervalSince1970: 0),
            updatedAt: try time(19) ?? Date(timeIntervalSince1970: 0), startedAt: try time(20),
            finishedAt: try time(21))
    }

    func job(id: UUID) async throws -> JobRecord? {
        try await rows("SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE id = \(id)").first.map(Self.job)
    }

    func jobs(_ filter: JobFilter) async throws -> [JobRecord] {
        let states = filter.states.map(\.rawValue).sorted()
        let anyState = states.isEmpty
        let anyKind = filter.kind == nil
        return try await rows(
            """
            SELECT \(unescaped: Self.jobColumns) FROM jobs
            WHERE (\(anyState) OR state = ANY(\(states)))
              AND (\(anyKind) OR kind = \(filter.kind ?? ""))
              AND (\(filter.before == nil) OR (created_at, id) < (SELECT created_at, id FROM jobs WHERE id = \(filter.before)))
            ORDER BY created_at DESC, id DESC LIMIT \(filter.limit)
            """
        ).map(Self.job)
    }

    func jobCounts() async throws -> [(kind: String, state: JobState, count: Int)] {
        try await rows("SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state").map { row in
            let (kind, stateText, count) = try row.decode((String, String, Int64).self)
            guard let state = JobState(rawValue: stateText) else {
                throw StoreError.integrity("jobs.state holds a value that is not a job state")
            }
            return (kind, state, Int(count))
        }
    }

    func enqueueJob(_ job: JobRecord) async throws -> (job: JobRecord, created: Bool) {
        let inserted = try await rows(
            """
            INSERT INTO jobs (id, kind, idempotency_key, state, payload, progress_done, attempts, max_attempts,
                run_after, cancel_requested, created_by, created_at, updated_at)
            VALUES (\(job.id), \(job.kind), \(job.idempotencyKey), 'queued', \(job.payload), 0, 0,
                \(Int32(clamping: job.maxAttempts)), \(Timestamp.micros(job.runAfter)), false, \(job.createdBy),
                \(Timestamp.micros(job.createdAt)), \(Timestamp.micros(job.createdAt)))
            ON CONFLICT (kind, idempotency_key) DO NOTHING
            RETURNING \(unescaped: Self.jobColumns)
            """
        ).first.map(Self.job)
        if let inserted { return (inserted, true) }
        guard let key = job.idempotencyKey,
            let existing = try await rows(
                "SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE kind = \(job.kind) AND idempotency_key = \(key)"
            ).first.map(Self.job)
        else { throw StoreError.integrity("jobs: an enqueued job is neither inserted nor found") }
        return (existing, false)
    }

    func leaseJobs(
        kinds: [String], oneAtATime: Set<String>, limit: Int, lease: JobLease, now: Date,
        newLeaseID: @Sendable () -> UUID
    ) async throws -> [JobRecord] {
        guard !kinds.isEmpty, limit > 0 else { return [] }
        let now = Timestamp.micros(now)
        let expires = Timestamp.micros(lease.expiresAt)
        let candidates = try await rows(
            """
            SELECT id, kind FROM jobs
            WHERE kind = ANY(\(kinds))
              AND ((state = 'queued' AND run_after <= \(now)) OR (state = 'running' AND lease_expires_at <= \(now)))
            ORDER BY run_after, id LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
            """
        ).map { try $0.decode((UUID, String).self) }
        var leased: [JobRecord] = []
        for (id, kind) in candidates {
            let leaseID = newLeaseID()
            if oneAtATime.contains(kind) {
                let taken = try await rows(
                    """
                    INSERT INTO job_locks (name, job_id, lease_id, expires_at) VALUES (\(kind), \(id), \(leaseID), \(expires))
                    ON CONFLICT (name) DO UPDATE SET job_id = excluded.job_id, lease_id = excluded.lease_id,
                        expires_at = excluded.expires_at
                    WHERE job_locks.expires_at <= \(now) OR job_locks.job_id = excluded.job_id
                    RETURNING name
                    """)
                if taken.isEmpty { continue }
            }
            let job = try await rows(
                """
                UPDATE jobs SET state = 'running', lease_id = \(leaseID), lease_owner = \(lease.owner),
                    lease_expires_at = \(expires), attempts = attempts + 1, started_at = coalesce(started_at, \(now)),
                    updated_at = \(now)
                WHERE id = \(id) RETURNING \(unescaped: Self.jobColumns)
                """
            ).first.map(Self.job)
            if let job { leased.append(job) }
        }
        return leased
    }

    func leaseJob(id: UUID, lease: JobLease, now: Date, leaseID: UUID) async throws -> JobRecord? {
        let now = Timestamp.micros(now)
        let expires = Timestamp.micros(lease.expiresAt)
        return try await rows(
            """
            UPDATE jobs SET state = 'running', lease_id = \(leaseID), lease_owner = \(lease.owner),
                lease_expires_at = \(expires), attempts = attempts + 1, started_at = coalesce(started_at, \(now)),
                updated_at = \(now)
            WHERE id = \(id) AND (state = 'queued' OR (state = 'running' AND lease_expires_at <= \(now)))
            RETURNING \(unescaped: Self.jobColumns)
            """
        ).first.map(Self.job)
    }

    func heartbeatJob(
        id: UUID, leaseID: UUID, expiresAt: Date, progressDone: Int64, progressTotal: Int64?, cursor: String?,
        now: Date
    ) async throws -> (cancelRequested: Bool, record: JobRecord) {
        let now = Timestamp.micros(now)
        let expires = Timestamp.micros(expiresAt)
        guard
            let job = try await rows(
                """
                UPDATE jobs SET lease_expires_at = \(expires), progress_done = \(progressDone),
                    progress_total = \(progressTotal), cursor = coalesce(\(cursor), cursor), updated_at = \(now)
                WHERE id = \(id) AND lease_id = \(leaseID) AND state = 'running' AND lease_expires_at > \(now)
                RETURNING \(unescaped: Self.jobColumns)
                """
            ).first.map(Self.job)
        else { throw JobLeaseLost(jobID: id) }
        try await run(
            "UPDATE job_locks SET expires_at = \(expires) WHERE job_id = \(id) AND lease_id = \(leaseID)")
        return (job.cancelRequested, job)
    }

    func finishJob(id: UUID, leaseID: UUID, finish: JobFinish, now: Date) async throws -> JobRecord {
        var result: String?
        var error: String?
        var runAfter: Int64?
        var attemptsChange: Int32 = 0
        var finished: Int64? = Timestamp.micros(now)
        switch finish {
        case .succeeded(let summary): result = summary
        case .retry(let message, let after):
            error = message
            runAfter = Timestamp.micros(after)
            finished = nil
        case .needsAttention(let message): error = message
        case .cancelled: break
        case .released:
            runAfter = Timestamp.micros(now)
            attemptsChange = -1
            finished = nil
        case .waiting(let until, let reason):
            error = reason
            runAfter = Timestamp.micros(until)
            attemptsChange = -1
            finished = nil
        }
        let now = Timestamp.micros(now)
        guard
            let job = try await rows(
                """
                UPDATE jobs SET state = \(finish.state.rawValue), lease_id = NULL, lease_owner = NULL,
                    lease_expires_at = NULL, result = coalesce(\(result), result),
                    last_error = coalesce(\(error), last_error), run_after = coalesce(\(runAfter), run_after),
                    attempts = greatest(attempts + \(attemptsChange), 0), finished_at = \(finished), updated_at = \(now)
                WHERE id = \(id) AND lease_id = \(leaseID) AND state = 'running' AND lease_expires_at > \(now)
                RETURNING \(unescaped: Self.jobColumns)
                """
            ).first.map(Self.job)
        else { throw JobLeaseLost(jobID: id) }
        try await run("DELETE FROM job_locks WHERE job_id = \(id) AND lease_id = \(leaseID)")
        return job
    }

    func cancelJob(id: UUID, now: Date) async throws -> JobRecord? {
        let now = Timestamp.micros(now)
        try await run(
            """
            UPDATE jobs SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
                cancel_requested = (state = 'running') OR cancel_requested,
                finished_at = CASE WHEN state = 'running' THEN finished_at ELSE \(now) END, updated_at = \(now)
            WHERE id = \(id) AND state IN ('queued', 'running', 'needs_attention')
            """)
        return try await job(id: id)
    }

    func retryJob(id: UUID, now: Date) async throws -> JobRecord? {
        let now = Timestamp.micros(now)
        try await run(
            """
            UPDATE jobs SET state = 'queued', attempts = 0, run_after = \(now), cancel_requested = false,
                finished_at = NULL, updated_at = \(now)
            WHERE id = \(id) AND state IN ('needs_attention', 'cancelled')
            """)
        return try await job(id: id)
    }

    func failSucceededJob(id: UUID, error: String, now: Date) async throws -> JobRecord? {
        let now = Timestamp.micros(now)
        try await run(
            """
            UPDATE jobs SET state = 'needs_attention', last_error = \(error), cursor = NULL, finished_at = \(now),
                updated_at = \(now)
            WHERE id = \(id) AND state = 'succeeded'
            """)
        return try await job(id: id)
    }
}
