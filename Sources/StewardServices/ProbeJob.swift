public import Foundation
public import StewardCore

/// A diagnostic job: `steward jobs probe` enqueues some to show that runners are alive and that work
/// commits exactly once. Each step waits `workMilliseconds` (the work), then commits its one effect —
/// a `job.probe.step` audit entry naming the job and step — with its cursor, under the lease. A probe
/// killed mid-step redoes that step's wait, never its entry: the audit log holds exactly one entry
/// per step of every probe, however often runners die.
public struct ProbeJob: JobHandler {
    public struct Payload: Codable, Sendable, Hashable {
        public var steps: Int
        public var workMilliseconds: Int
        public init(steps: Int, workMilliseconds: Int) {
            self.steps = steps
            self.workMilliseconds = workMilliseconds
        }
    }
    public struct Cursor: Codable, Sendable, Hashable {
        public var step: Int
    }
    public struct Summary: Codable, Sendable, Hashable {
        public var steps: Int
    }

    public static let kind = "steward.probe"
    public static let maxAttempts = 25

    let audit: AuditLog

    public init(audit: AuditLog) { self.audit = audit }

    public func run(_ job: JobExecution<ProbeJob>) async throws -> Summary {
        let id = job.record.id.lowercasedString
        let actor = "job:\(id)"
        let audit = self.audit
        var step = job.cursor?.step ?? 0
        while step < job.payload.steps {
            try await Task.sleep(for: .milliseconds(max(0, job.payload.workMilliseconds)))
            step += 1
            let done = step
            _ = try await job.checkpoint(
                cursor: Cursor(step: done), done: Int64(done), total: Int64(job.payload.steps)
            ) { transaction in
                try await audit.append(
                    [
                        AuditDraft(
                            actor: actor, action: "job.probe.step", targetType: "job", targetID: id,
                            details: ["step": "\(done)"])
                    ], in: transaction)
            }
        }
        return Summary(steps: step)
    }
}
