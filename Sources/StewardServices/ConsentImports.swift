public import Foundation
public import StewardCore
import Synchronization

/// `steward consent import` on the job queue: each import of a file is a `consent.import` job whose
/// idempotency key is the file's format and SHA-256 (`import:csv:<sha256>`), so a file imported
/// completely is not imported again (unless asked: `--again` makes a new job), and an import that
/// died is resumed by running the command again. The command runs its job itself — the file, the
/// rejects and the tokens files are on its machine — under a lease like any runner's: each batch
/// commits with the job's cursor (`ImportPosition`) in its transaction, fenced by the lease, and a
/// crashed run's lease expires so the next run takes over. `steward jobs list` shows imports too.
public struct ConsentImports: Sendable {
    public static let kind = "consent.import"
    /// Short, so a run after a crash waits little for the dead run's lease: the importing command
    /// renews it every few seconds while it works.
    public static let leaseDuration: Duration = .seconds(15)

    public struct Payload: Codable, Sendable, Hashable {
        /// The file's base name (for people; the digest identifies the content).
        public var file: String
        public var format: String
        public var sha256: String
    }

    /// The totals of an import over all its runs, as its job's result.
    public struct Summary: Codable, Sendable, Hashable {
        public var accepted: Int
        public var rejected: Int
        /// The last line read.
        public var lines: Int
        public init(accepted: Int, rejected: Int, lines: Int) {
            self.accepted = accepted
            self.rejected = rejected
            self.lines = lines
        }
    }

    let consent: ConsentService
    let owner: String

    public init(consent: ConsentService, owner: String = "cli:\(ProcessInfo.processInfo.processIdentifier)") {
        self.consent = consent
        self.owner = owner
    }

    var store: any StewardStore { consent.store }
    var runtime: Runtime { consent.runtime }

    /// An import this command holds the lease of.
    public struct Run: Sendable {
        public let job: JobRecord
        public let leaseID: UUID
        /// Where the previous runs stopped (nil: from the first line).
        public let resumeFrom: ConsentService.ImportPosition?
        let runtime: Runtime
        /// The last line a batch wrote into the job's cursor, for the renewals in between (which
        /// would otherwise set the job's progress back).
        let lastLine: LastLine

        final class LastLine: Sendable {
            let value: Mutex<Int>
            init(_ line: Int) { value = Mutex(line) }
        }

        /// The cursor whose batches commit the job's position under this lease.
        public func cursor(accepted: Int, rejected: Int) -> ConsentService.ImportCursor {
            let (id, leaseID, runtime, lastLine) = (job.id, leaseID, runtime, lastLine)
            return ConsentService.ImportCursor(accepted: accepted, rejected: rejected) { transaction, position in
                let now = runtime.nowMicros()
                _ = try await transaction.heartbeatJob(
                    id: id, leaseID: leaseID, expiresAt: now.addingTimeInterval(ConsentImports.leaseDuration.seconds),
                    progressDone: Int64(position.line), progressTotal: nil, cursor: try JobCoding.encode(position),
                    now: now)
                lastLine.value.withLock { $0 = max($0, position.line) }
            }
        }
    }

    public enum Start: Sendable {
        /// The file was imported completely before (and `again` was not asked).
        case importedBefore(JobRecord)
        /// Another run holds this import's lease until then.
        case busy(until: Date)
        case run(Run)
    }

    static func key(format: String, sha256: String) -> String { "import:\(format):\(sha256)" }

    /// Finds or enqueues the import of this file and leases it.
    public func start(file: String, format: String, sha256: String, again: Bool, actor: String) async throws -> Start {
        _ = try await migrateLegacyCheckpoints()
        let base = Self.key(format: format, sha256: sha256)
        let now = runtime.nowMicros()
        let payload = try JobCoding.encode(Payload(file: file, format: format, sha256: sha256))
        let newID = runtime.newID()
        let leaseID = runtime.newID()
        let lease = JobLease(owner: owner, expiresAt: now.addingTimeInterval(Self.leaseDuration.seconds))
        let runtime = self.runtime
        let audit = AuditLog(sealer: consent.crypto.sealer, runtime: runtime)
        return try await store.write { transaction in
            let latest = try await Self.imports(of: base, in: transaction).first
            var job: JobRecord
            switch latest?.state {
            case .succeeded? where !again: return .importedBefore(latest!)
            case nil, .succeeded?, .cancelled?:
                // A first import, or another after a finished (or cancelled) one.
                let key = latest == nil ? base : "\(base):\(newID.lowercasedString)"
                job = try await transaction.enqueueJob(
                    JobRecord.new(
                        id: newID, kind: Self.kind, idempotencyKey: key, payload: payload, maxAttempts: 1_000,
                        runAfter: now, createdBy: actor, now: now)
                ).job
                // Audited with the enqueue: which content (format and digest, never the file's name or
                // rows) an operator started importing, and whether it repeats a finished import.
                try await audit.append(
                    [
                        AuditDraft(
                            actor: actor, action: "consent.import.started", targetType: "job",
                            targetID: job.id.lowercasedString,
                            details: ["format": format, "sha256": sha256, "again": String(latest != nil)])
                    ], in: transaction)
            case .needsAttention?:
                job = try await transaction.retryJob(id: latest!.id, now: now) ?? latest!
            case .queued?, .running?:
                job = latest!
            }
            guard let leased = try await transaction.leaseJob(id: job.id, lease: lease, now: now, leaseID: leaseID)
            else { return .busy(until: job.leaseExpiresAt ?? now) }
            let position = try leased.cursor.map {
                try JobCoding.decode(ConsentService.ImportPosition.self, from: $0, field: "cursor")
            }
            return .run(
                Run(
                    job: leased, leaseID: leaseID, resumeFrom: position, runtime: runtime,
                    lastLine: Run.LastLine(position?.line ?? 0)))
        }
    }

    /// Renews the lease while the import works (between its batches' own renewals), keeping the
    /// progress the last batch recorded.
    public func renew(_ run: Run) async throws {
        let now = runtime.nowMicros()
        let line = run.lastLine.value.withLock { $0 }
        _ = try await store.write { transaction in
            try await transaction.heartbeatJob(
                id: run.job.id, leaseID: run.leaseID, expiresAt: now.addingTimeInterval(Self.leaseDuration.seconds),
                progressDone: Int64(line), progressTotal: nil, cursor: nil, now: now)
        }
    }

    /// Marks the import finished with its totals and audits it in the same transaction:
    /// `consent.import.finished` on the import's key, with this run's counts and where it resumed.
    public func finish(
        _ run: Run, total: Summary, accepted: Int, rejected: Int, resumedAfter: Int, actor: String
    ) async throws {
        let now = runtime.nowMicros()
        let audit = AuditLog(sealer: consent.crypto.sealer, runtime: runtime)
        let key = run.job.idempotencyKey ?? run.job.id.lowercasedString
        let result = try JobCoding.encode(total)
        try await store.write { transaction in
            _ = try await transaction.finishJob(
                id: run.job.id, leaseID: run.leaseID, finish: .succeeded(result: result), now: now)
            var details = ["accepted": String(accepted), "rejected": String(rejected)]
            if resumedAfter > 0 { details["resumed_after_line"] = String(resumedAfter) }
            try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "consent.import.finished", targetType: "import", targetID: key,
                        details: details)
                ], in: transaction)
        }
    }

    /// Hands the import back after a failure: queued, to resume from its cursor on the next run.
    public func release(_ run: Run) async {
        let now = runtime.nowMicros()
        _ = try? await store.write { transaction in
            try await transaction.finishJob(id: run.job.id, leaseID: run.leaseID, finish: .released, now: now)
        }
    }

    /// One import as `steward consent imports` lists it.
    public struct Listing: Sendable {
        public var job: JobRecord
        public var payload: Payload?
        /// Where it stopped, for an unfinished import.
        public var position: ConsentService.ImportPosition?
        public var total: Summary?
    }

    /// Every import, oldest first.
    public func list() async throws -> [Listing] {
        _ = try await migrateLegacyCheckpoints()
        let jobs = try await store.read { try await $0.jobs(JobFilter(kind: Self.kind, limit: 100_000)) }
        return jobs.reversed().map { job in
            Listing(
                job: job, payload: try? JobCoding.decode(Payload.self, from: job.payload, field: "payload"),
                position: job.cursor.flatMap {
                    try? JobCoding.decode(ConsentService.ImportPosition.self, from: $0, field: "cursor")
                },
                total: job.result.flatMap { try? JobCoding.decode(Summary.self, from: $0, field: "result") })
        }
    }

    /// The imports of one file (its key, and the keys of later runs `--again` made), newest first.
    static func imports(of base: String, in reader: any JobQueueReading) async throws -> [JobRecord] {
        try await reader.jobs(JobFilter(kind: kind, limit: 100_000)).filter {
            $0.idempotencyKey == base || $0.idempotencyKey?.hasPrefix(base + ":") == true
        }
    }

    /// Imports recorded by earlier versions as settings (`import:<format>:<sha256>` with `done` or
    /// `<line> <accepted> <rejected>`, and `import-file:…` with the file's name, times and totals)
    /// become jobs — finished, or queued with their cursor — and the settings go, in one
    /// transaction. Returns how many were moved.
    public func migrateLegacyCheckpoints() async throws -> Int {
        let legacy = try await store.read { try await $0.settings(prefix: "import:") }
        guard !legacy.isEmpty else { return 0 }
        let runtime = self.runtime
        let owner = self.owner
        return try await store.write { transaction in
            var moved = 0
            for (key, value) in try await transaction.settings(prefix: "import:") {
                let parts = key.split(separator: ":", maxSplits: 2).map(String.init)
                let fileKey = "import-file:" + key.dropFirst("import:".count)
                let info =
                    try await transaction.setting(fileKey).flatMap {
                        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                    } ?? [:]
                func number(_ name: String) -> Int? { (info[name] as? NSNumber)?.intValue }
                let now = runtime.nowMicros()
                let created = number("startedAt").map { Timestamp.date(micros: Int64($0)) } ?? now
                let payload = Payload(
                    file: info["file"] as? String ?? "(file name not recorded)",
                    format: parts.count == 3 ? parts[1] : "?", sha256: parts.count == 3 ? parts[2] : key)
                let job = try await transaction.enqueueJob(
                    JobRecord.new(
                        id: runtime.newID(), kind: Self.kind, idempotencyKey: key,
                        payload: try JobCoding.encode(payload), maxAttempts: 1_000, runAfter: now,
                        createdBy: "migration", now: created))
                if job.created {
                    // Through a lease of its own, so the job's record is written the way every job's is.
                    let leaseID = runtime.newID()
                    let lease = JobLease(owner: owner, expiresAt: now.addingTimeInterval(60))
                    if try await transaction.leaseJob(id: job.job.id, lease: lease, now: now, leaseID: leaseID) != nil {
                        let numbers = value.split(separator: " ").compactMap { Int($0) }
                        if value == "done" {
                            let total = Summary(
                                accepted: number("accepted") ?? 0, rejected: number("rejected") ?? 0,
                                lines: number("lines") ?? 0)
                            _ = try await transaction.finishJob(
                                id: job.job.id, leaseID: leaseID,
                                finish: .succeeded(result: try JobCoding.encode(total)),
                                now: now)
                        } else {
                            let position = ConsentService.ImportPosition(
                                line: numbers.first ?? 0, accepted: numbers.count == 3 ? numbers[1] : 0,
                                rejected: numbers.count == 3 ? numbers[2] : 0)
                            _ = try await transaction.heartbeatJob(
                                id: job.job.id, leaseID: leaseID, expiresAt: lease.expiresAt,
                                progressDone: Int64(position.line), progressTotal: nil,
                                cursor: try JobCoding.encode(position), now: now)
                            _ = try await transaction.finishJob(
                                id: job.job.id, leaseID: leaseID, finish: .released, now: now)
                        }
                    }
                    moved += 1
                }
                try await transaction.deleteSetting(key)
                try await transaction.deleteSetting(fileKey)
            }
            if moved > 0 {
                try await AuditLog(sealer: self.consent.crypto.sealer, runtime: runtime).append(
                    [
                        AuditDraft(
                            actor: "system", action: "consent.import.migrated", targetType: "job",
                            targetID: Self.kind, details: ["imports": String(moved)])
                    ], in: transaction)
            }
            return moved
        }
    }
}
