import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// The job queue on SQLite. Leases need no row locks here: every write transaction runs on the one
/// writer connection, and other processes on the same file wait for `BEGIN IMMEDIATE`, so a lease's
/// read and update are never interleaved with another's.
extension SQLiteSession {
    static let jobColumns = """
        SELECT id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total, result, last_error,
            attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at, cancel_requested, created_by,
            created_at, updated_at, started_at, finished_at FROM jobs
        """

    static func job(_ row: SQLiteConnection.Row) throws -> JobRecord {
        guard let state = JobState(rawValue: row.text(3)) else {
            throw StoreError.integrity("jobs.state holds a value that is not a job state")
        }
        return JobRecord(
            id: try row.uuid(0), kind: row.text(1), idempotencyKey: row.optionalText(2), state: state,
            payload: row.text(4), cursor: row.optionalText(5), progressDone: row.int(6),
            progressTotal: row.isNull(7) ? nil : row.int(7), result: row.optionalText(8),
            lastError: row.optionalText(9), attempts: Int(row.int(10)), maxAttempts: Int(row.int(11)),
            runAfter: row.time(12), leaseID: try row.optionalUUID(13), leaseOwner: row.optionalText(14),
            leaseExpiresAt: row.optionalTime(15), cancelRequested: row.int(16) != 0, createdBy: row.text(17),
            createdAt: row.time(18), updatedAt: row.time(19), startedAt: row.optionalTime(20),
            finishedAt: row.optionalTime(21))
    }

    func job(id: UUID) async throws -> JobRecord? {
        try connection.query(Self.jobColumns + " WHERE id = ?", [.uuid(id)], Self.job).first
    }

    func jobs(_ filter: JobFilter) async throws -> [JobRecord] {
        var conditions: [String] = []
        var values: [SQLValue] = []
        if !filter.states.isEmpty {
            let states = filter.states.map(\.rawValue).sorted()
            conditions.append("state IN (" + Array(repeating: "?", count: states.count).joined(separator: ", ") + ")")
            values += states.map { .text($0) }
        }
        if let kind = filter.kind {
            conditions.append("kind = ?")
            values.append(.text(kind))
        }
        if let before = filter.before {
            conditions.append("(created_at, id) < (SELECT created_at, id FROM jobs WHERE id = ?)")
            values.append(.uuid(before))
        }
        let clause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        values.append(.int(Int64(filter.limit)))
        return try connection.query(
            Self.jobColumns + clause + " ORDER BY created_at DESC, id DESC LIMIT ?", values, Self.job)
    }

    func jobCounts() async throws -> [(kind: String, state: JobState, count: Int)] {
        try connection.query("SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state") {
            row in
            guard let state = JobState(rawValue: row.text(1)) else {
                throw StoreError.integrity("jobs.state holds a value that is not a job state")
            }
            return (row.text(0), state, Int(row.int(2)))
        }
    }

    func enqueueJob(_ job: JobRecord) async throws -> (job: JobRecord, created: Bool) {
        let inserted = try connection.run(
            """
            INSERT INTO jobs (id, kind, idempotency_key, state, payload, progress_done, attempts, max_attempts,
                run_after, cancel_requested, created_by, created_at, updated_at)
            VALUES (?, ?, ?, 'queued', ?, 0, 0, ?, ?, 0, ?, ?, ?)
            ON CONFLICT (kind, idempotency_key) DO NOTHING
            """,
            [
                .uuid(job.id), .text(job.kind), .text(job.idempotencyKey), .text(job.payload),
                .int(Int64(job.maxAttempts)), .time(job.runAfter), .text(job.createdBy), .time(job.createdAt),
                .time(job.createdAt),
            ])
        if inserted == 1, let stored = try await self.job(id: job.id) { return (stored, true) }
        guard let key = job.idempotencyKey,
            let existing = try connection.query(
                Self.jobColumns + " WHERE kind = ? AND idempotency_key = ?", [.text(job.kind), .text(key)], Self.job
            ).first
        else { throw StoreError.integrity("jobs: an enqueued job is neither inserted nor found") }
        return (existing, false)
    }

    func leaseJobs(
        kinds: [String], oneAtATime: Set<String>, limit: Int, lease: JobLease, now: Date,
        newLeaseID: @Sendable () -> UUID
    ) async throws -> [JobRecord] {
        guard !kinds.isEmpty, limit > 0 else { return [] }
        let placeholders = Array(repeating: "?", count: kinds.count).joined(separator: ", ")
        let candidates = try connection.query(
            """
            SELECT id, kind FROM jobs
            WHERE kind IN (\(placeholders))
              AND ((state = 'queued' AND run_after <= ?) OR (state = 'running' AND lease_expires_at <= ?))
            ORDER BY run_after, id LIMIT ?
            """,
            kinds.map { .text($0) } + [.time(now), .time(now), .int(Int64(limit))]
        ) { (try $0.uuid(0), $0.text(1)) }
        var leased: [JobRecord] = []
        for (id, kind) in candidates {
            let leaseID = newLeaseID()
            if oneAtATime.contains(kind) {
                // The kind's lock row: taken when absent or expired, else this job waits its turn.
                let taken = try connection.run(
                    """
                    INSERT INTO job_locks (name, job_id, lease_id, expires_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET job_id = excluded.job_id, lease_id = excluded.lease_id,
                        expires_at = excluded.expires_at
                    WHERE job_locks.expires_at <= ? OR job_locks.job_id = excluded.job_id
                    """, [.text(kind), .uuid(id), .uuid(leaseID), .time(lease.expiresAt), .time(now)])
                if taken == 0 { continue }
            }
            let job = try connection.query(
                """
                UPDATE jobs SET state = 'running', lease_id = ?, lease_owner = ?, lease_expires_at = ?,
                    attempts = attempts + 1, started_at = coalesce(started_at, ?), updated_at = ?
                WHERE id = ? RETURNING id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total,
                    result, last_error, attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at,
                    cancel_requested, created_by, created_at, updated_at, started_at, finished_at
                """,
                [.uuid(leaseID), .text(lease.owner), .time(lease.expiresAt), .time(now), .time(now), .uuid(id)],
                Self.job
            ).first
            if let job { leased.append(job) }
        }
        return leased
    }

    func leaseJob(id: UUID, lease: JobLease, now: Date, leaseID: UUID) async throws -> JobRecord? {
        try connection.query(
            """
            UPDATE jobs SET state = 'running', lease_id = ?, lease_owner = ?, lease_expires_at = ?,
                attempts = attempts + 1, started_at = coalesce(started_at, ?), updated_at = ?
            WHERE id = ? AND (state = 'queued' OR (state = 'running' AND lease_expires_at <= ?))
            RETURNING id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total,
                result, last_error, attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at,
                cancel_requested, created_by, created_at, updated_at, started_at, finished_at
            """,
            [
                .uuid(leaseID), .text(lease.owner), .time(lease.expiresAt), .time(now), .time(now), .uuid(id),
                .time(now),
            ], Self.job
        ).first
    }

    func heartbeatJob(
        id: UUID, leaseID: UUID, expiresAt: Date, progressDone: Int64, progressTotal: Int64?, cursor: String?,
        now: Date
    ) async throws -> (cancelRequested: Bool, record: JobRecord) {
        guard
            let job = try connection.query(
                """
                UPDATE jobs SET lease_expires_at = ?, progress_done = ?, progress_total = ?,
                    cursor = coalesce(?, cursor), updated_at = ?
                WHERE id = ? AND lease_id = ? AND state = 'running' AND lease_expires_at > ?
                RETURNING id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total,
                    result, last_error, attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at,
                    cancel_requested, created_by, created_at, updated_at, started_at, finished_at
                """,
                [
                    .time(expiresAt), .int(progressDone), progressTotal.map { .int($0) } ?? .null, .text(cursor),
                    .time(now), .uuid(id), .uuid(leaseID), .time(now),
                ], Self.job
            ).first
        else { throw JobLeaseLost(jobID: id) }
        try connection.run(
            "UPDATE job_locks SET expires_at = ? WHERE job_id = ? AND lease_id = ?",
            [.time(expiresAt), .uuid(id), .uuid(leaseID)])
        return (job.cancelRequested, job)
    }

    func finishJob(id: UUID, leaseID: UUID, finish: JobFinish, now: Date) async throws -> JobRecord {
        var result: SQLValue = .null
        var error: SQLValue = .null
        var runAfter: SQLValue = .null
        var attemptsChange: Int64 = 0
        var finished: SQLValue = .time(now)
        switch finish {
        case .succeeded(let summary): result = .text(summary)
        case .retry(let message, let after):
            error = .text(message)
            runAfter = .time(after)
            finished = .null
        case .needsAttention(let message): error = .text(message)
        case .cancelled: break
        case .released:
            runAfter = .time(now)
            attemptsChange = -1
            finished = .null
        case .waiting(let until, let reason):
            error = .text(reason)
            runAfter = .time(until)
            attemptsChange = -1
            finished = .null
        }
        guard
            let job = try connection.query(
                """
                UPDATE jobs SET state = ?, lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL,
                    result = coalesce(?, result), last_error = coalesce(?, last_error),
                    run_after = coalesce(?, run_after), attempts = max(attempts + ?, 0), finished_at = ?,
                    updated_at = ?
                WHERE id = ? AND lease_id = ? AND state = 'running' AND lease_expires_at > ?
                RETURNING id, kind, idempotency_key, state, payload, cursor, progress_done, progress_total,
                    result, last_error, attempts, max_attempts, run_after, lease_id, lease_owner, lease_expires_at,
                    cancel_requested, created_by, created_at, updated_at, started_at, finished_at
                """,
                [
                    .text(finish.state.rawValue), result, error, runAfter, .int(attemptsChange), finished, .time(now),
                    .uuid(id), .uuid(leaseID), .time(now),
                ], Self.job
            ).first
        else { throw JobLeaseLost(jobID: id) }
        try connection.run("DELETE FROM job_locks WHERE job_id = ? AND lease_id = ?", [.uuid(id), .uuid(leaseID)])
        return job
    }

    func cancelJob(id: UUID, now: Date) async throws -> JobRecord? {
        try connection.run(
            """
            UPDATE jobs SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
                cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END,
                finished_at = CASE WHEN state = 'running' THEN finished_at ELSE ? END, updated_at = ?
            WHERE id = ? AND state IN ('queued', 'running', 'needs_attention')
            """, [.time(now), .time(now), .uuid(id)])
        return try await job(id: id)
    }

    func retryJob(id: UUID, now: Date) async throws -> JobRecord? {
        try connection.run(
            """
            UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?, cancel_requested = 0, finished_at = NULL,
                updated_at = ?
            WHERE id = ? AND state IN ('needs_attention', 'cancelled')
            """, [.time(now), .time(now), .uuid(id)])
        return try await job(id: id)
    }

    func failSucceededJob(id: UUID, error: String, now: Date) async throws -> JobRecord? {
        try connection.run(
            """
            UPDATE jobs SET state = 'needs_attention', last_error = ?, cursor = NULL, finished_at = ?, updated_at = ?
            WHERE id = ? AND state = 'succeeded'
            """, [.text(error), .time(now), .time(now), .uuid(id)])
        return try await job(id: id)
    }
}
