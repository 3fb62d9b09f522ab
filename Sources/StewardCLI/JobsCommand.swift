import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StewardConnectors
import StewardCore
import StewardServices
import Synchronization
import UnixSignals

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "See and steer durable jobs; run a worker.",
        subcommands: [List.self, Show.self, Cancel.self, Retry.self, Work.self, Probe.self, Latency.self])

    static func line(_ job: JobRecord) -> String {
        var parts = [job.id.lowercasedString, job.kind, job.state.rawValue]
        if let total = job.progressTotal {
            parts.append("\(job.progressDone)/\(total)")
        } else if job.progressDone > 0 {
            parts.append("\(job.progressDone) done")
        }
        parts.append("attempt \(job.attempts)/\(job.maxAttempts)")
        if job.cancelRequested && job.state == .running { parts.append("cancel requested") }
        if job.state == .running, let owner = job.leaseOwner { parts.append("leased by \(owner)") }
        return parts.joined(separator: "  ")
    }

    static func parseID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a job id") }
        return id
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first, and count them by state.")
        @OptionGroup var common: CommonOptions
        @Option(
            help: "Only jobs in this state (\(JobState.allCases.map(\.rawValue).joined(separator: ", "))); repeatable.")
        var state: [String] = []
        @Option(help: "Only jobs of this kind.") var kind: String?
        @Option(help: "At most this many lines (1 to 10000).") var limit = 50

        func validate() throws {
            for name in state where JobState(rawValue: name) == nil {
                throw ValidationError(
                    "unknown job state '\(name)'; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1 to 10000") }
        }

        func run() async throws {
            let states = Set(state.compactMap(JobState.init(rawValue:)))
            let setup = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let (jobs, counts) = try await setup.withStore { wiring in
                try await wiring.store.read { reader in
                    (
                        try await reader.jobs(JobFilter(states: states, kind: kind, limit: limit)),
                        try await reader.jobCounts()
                    )
                }
            }
            for job in jobs { print(JobsCommand.line(job)) }
            let relevant = counts.filter { kind == nil || $0.kind == kind }
            var byState: [JobState: Int] = [:]
            for count in relevant { byState[count.state, default: 0] += count.count }
            let total = byState.values.reduce(0, +)
            let summary = JobState.allCases.compactMap { state in byState[state].map { "\($0) \(state.rawValue)" } }
            print(
                "\(total) job(s)\(kind.map { " of kind \($0)" } ?? ""): "
                    + (summary.isEmpty ? "none" : summary.joined(separator: ", ")))
            if let attention = byState[.needsAttention], attention > 0 {
                print(
                    "\(attention) need(s) attention: see `steward jobs show ID`, then `steward jobs retry ID` or `cancel ID`"
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one job: state, progress, lease, last error, result.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The job id.") var id: String

        func validate() throws { _ = try JobsCommand.parseID(id) }

        func run() async throws {
            let uuid = try JobsCommand.parseID(id)
            let setup = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            guard
                let job = try await setup.withStore({ wiring in
                    try await wiring.store.read { try await $0.job(id: uuid) }
                })
            else { throw CLIError("no job has the id \(uuid.lowercasedString)") }
            print(JobsCommand.line(job))
            print("  created \(Timestamp.iso8601(job.createdAt)) by \(job.createdBy)")
            if let key = job.idempotencyKey { print("  idempotency key: \(key)") }
            print("  payload: \(job.payload)")
            if let cursor = job.cursor { print("  cursor: \(cursor)") }
            if let started = job.startedAt { print("  started \(Timestamp.iso8601(started))") }
            if job.state == .queued { print("  runs after \(Timestamp.iso8601(job.runAfter))") }
            if let owner = job.leaseOwner, let expires = job.leaseExpiresAt {
                print("  leased by \(owner) until \(Timestamp.iso8601(expires))")
            }
            if let error = job.lastError { print("  last error: \(error)") }
            if let finished = job.finishedAt { print("  finished \(Timestamp.iso8601(finished))") }
            if let result = job.result { print("  result: \(result)") }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a job: at once when queued; a running job stops at its next checkpoint.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The job id.") var id: String

        func validate() throws { _ = try JobsCommand.parseID(id) }

        func run() async throws {
            let job = try await JobsCommand.act(on: id, common) { queue, id, audit in
                try await queue.cancel(id: id, actor: cliActor, audit: audit)
            }
            let name = "job \(job.id.lowercasedString) (\(job.kind))"
            switch job.state {
            case .cancelled: print("cancelled \(name)")
            case .running: print("asked \(name) to stop at its next checkpoint")
            default: print("\(name) is \(job.state.rawValue): nothing to cancel")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a job that needs attention or was cancelled again, with its attempts reset.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The job id.") var id: String

        func validate() throws { _ = try JobsCommand.parseID(id) }

        func run() async throws {
            let job = try await JobsCommand.act(on: id, common) { queue, id, audit in
                try await queue.retry(id: id, actor: cliActor, audit: audit)
            }
            print(
                "queued job \(job.id.lowercasedString) (\(job.kind)) again; a runner picks it up within its poll interval"
            )
        }
    }

    /// Runs an operator's action on one job, with the store open and the audit log at hand.
    static func act(
        on text: String, _ common: CommonOptions,
        _ action: @escaping @Sendable (JobQueue, UUID, AuditLog) async throws -> JobRecord
    ) async throws -> JobRecord {
        let id = try parseID(text)
        let setup = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
        return try await setup.withStore { wiring in
            try await action(JobQueue(store: wiring.store, runtime: wiring.runtime), id, wiring.auditLog)
        }
    }

    struct Work: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Run jobs without the HTTP API (a worker process), until SIGTERM or, with --until-idle, until none is left."
        )
        @OptionGroup var common: CommonOptions
        @Option(help: "Jobs run at once (1 to 256).") var concurrency = 4
        @Option(help: "Seconds a lease lasts without a heartbeat (1 to 3600).") var leaseSeconds = 30.0
        @Option(help: "Seconds between heartbeats (less than the lease).") var heartbeatSeconds = 10.0
        @Option(help: "Seconds between looks for jobs enqueued elsewhere.") var pollSeconds = 1.0
        @Flag(help: "Exit once no job of the runner's kinds is queued or running anywhere.") var untilIdle = false

        func validate() throws {
            guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 256") }
            guard (1...3_600).contains(leaseSeconds) else { throw ValidationError("--lease-seconds must be 1 to 3600") }
            guard heartbeatSeconds > 0, heartbeatSeconds < leaseSeconds else {
                throw ValidationError("--heartbeat-seconds must be above 0 and below --lease-seconds")
            }
            guard pollSeconds > 0, pollSeconds <= 3_600 else { throw ValidationError("--poll-seconds must be above 0") }
        }

        func run() async throws {
            let logger = Wiring.makeLogger(common)
            // The policy, when there is one, for the data subject requests' tasks (their data map).
            let policies = common.absolute(common.resolvedPolicies)
            let setup = try Wiring.open(
                common, logger: logger, needsPolicy: FileManager.default.fileExists(atPath: policies))
            let started = ContinuousClock.now
            let finished = try await setup.withStore { wiring in
                let systems = CustomerSystems(policies: policies, environment: common.env)
                let webhook = try RequestWiring.webhook(common.env)
                let services = UseCases(
                    store: wiring.store, crypto: wiring.crypto, policy: wiring.policy, runtime: wiring.runtime,
                    requestExecute: RequestWiring.execute(map: wiring.policy.dataMap, systems: systems),
                    requestDeliver: try RequestWiring.deliver(map: wiring.policy.dataMap, systems: systems),
                    requestWebhooks: webhook != nil)
                let runner = JobRunner(
                    store: wiring.store, runtime: wiring.runtime,
                    configuration: .init(
                        concurrency: concurrency, pollInterval: .milliseconds(Int64(pollSeconds * 1_000)),
                        leaseDuration: .milliseconds(Int64(leaseSeconds * 1_000)),
                        heartbeatInterval: .milliseconds(Int64(heartbeatSeconds * 1_000))),
                    untilIdle: untilIdle, logger: logger
                ).registering(ProbeJob(audit: wiring.auditLog)).registering(RequestTaskJob(service: services.requests))
                    .registering(webhooks: webhook)
                logger.info(
                    "job worker starting",
                    metadata: [
                        "jobs.kinds": "\(runner.kinds.joined(separator: ","))", "jobs.concurrency": "\(concurrency)",
                    ])
                let group = ServiceGroup(
                    configuration: .init(
                        services: [.init(service: runner, successTerminationBehavior: .gracefullyShutdownGroup)],
                        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
                return try await wiring.store.read { try await $0.jobCounts() }
            }
            let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000
            let open = finished.filter { $0.state == .queued || $0.state == .running }.map(\.count).reduce(0, +)
            let attention = finished.filter { $0.state == .needsAttention }.map(\.count).reduce(0, +)
            print(
                "job worker stopped after \(String(format: "%.1f", seconds)) s: \(open) job(s) queued or running, \(attention) need(s) attention"
            )
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enqueue diagnostic probe jobs (each step commits one audit entry); with --wait, wait for them.")
        @OptionGroup var common: CommonOptions
        @Option(help: "How many probes (1 to 100000).") var count = 1
        @Option(help: "Steps per probe (1 to 100).") var steps = 1
        @Option(help: "Milliseconds of work per step (0 to 60000).") var workMs = 0
        @Option(help: "Seconds to wait for the probes to finish (0: do not wait).") var wait = 0.0

        func validate() throws {
            guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1 to 100000") }
            guard (1...100).contains(steps) else { throw ValidationError("--steps must be 1 to 100") }
            guard (0...60_000).contains(workMs) else { throw ValidationError("--work-ms must be 0 to 60000") }
            guard wait >= 0 else { throw ValidationError("--wait must not be negative") }
        }

        func run() async throws {
            let setup = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let payload = ProbeJob.Payload(steps: steps, workMilliseconds: workMs)
            let outcome = try await setup.withStore {
                wiring -> (ids: [UUID], done: Int, succeeded: Int, waited: Bool) in
                let queue = JobQueue(store: wiring.store, runtime: wiring.runtime)
                var ids: [UUID] = []
                // Enqueued in transactions of up to 1,000, with one audit entry each.
                for start in stride(from: 0, to: count, by: 1_000) {
                    let jobs = try (start..<min(start + 1_000, count)).map { _ in
                        try queue.job(ProbeJob.self, payload: payload, actor: cliActor)
                    }
                    let audit = wiring.auditLog
                    try await wiring.store.write { transaction in
                        for job in jobs { _ = try await transaction.enqueueJob(job) }
                        _ = try await audit.append(
                            [
                                AuditDraft(
                                    actor: cliActor, action: "job.enqueued", targetType: "job",
                                    targetID: jobs[0].id.lowercasedString,
                                    details: ["kind": ProbeJob.kind, "count": "\(jobs.count)"])
                            ], in: transaction)
                    }
                    ids += jobs.map(\.id)
                }
                guard wait > 0 else { return (ids, 0, 0, false) }
                let enqueued = ids
                let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1_000))
                var (finished, succeeded) = (0, 0)
                while ContinuousClock.now < deadline {
                    let states = try await wiring.store.read { reader in
                        var states: [JobState] = []
                        for id in enqueued { if let job = try await reader.job(id: id) { states.append(job.state) } }
                        return states
                    }
                    finished = states.filter(\.isFinal).count
                    succeeded = states.filter { $0 == .succeeded }.count
                    if finished == ids.count { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                return (ids, finished, succeeded, true)
            }
            if !outcome.waited {
                print(
                    "enqueued \(outcome.ids.count) probe job(s) of \(steps) step(s); `steward jobs list --kind \(ProbeJob.kind)` follows them"
                )
            } else if outcome.succeeded == outcome.ids.count {
                print("\(outcome.ids.count) probe job(s) finished: a runner is working")
            } else if outcome.done == outcome.ids.count {
                // Finished is not done: a probe that needs attention or was cancelled proves nothing.
                throw CLIError(
                    "\(outcome.ids.count - outcome.succeeded) of \(outcome.ids.count) probe job(s) ended without succeeding: see `steward jobs list --kind \(ProbeJob.kind)`"
                )
            } else {
                throw CLIError(
                    "\(outcome.ids.count - outcome.done) of \(outcome.ids.count) probe job(s) not finished after \(wait) s: is a runner (steward serve or steward jobs work) running against this database?"
                )
            }
        }
    }
}

extension JobRunner.Configuration {
    /// `STEWARD_JOBS_CONCURRENCY` (jobs run at once, 1 to 256; default 4),
    /// `STEWARD_JOBS_POLL_SECONDS` (how often to look for jobs enqueued by other instances; default 1)
    /// and `STEWARD_JOBS_LEASE_SECONDS` (how long a crashed instance's jobs wait before another takes
    /// them, 1 to 3600; default 30; heartbeats every third of it).
    init(environment: [String: String]) throws {
        self.init()
        if let text = environment["STEWARD_JOBS_CONCURRENCY"] {
            guard let value = Int(text), (1...256).contains(value) else {
                throw CLIError("STEWARD_JOBS_CONCURRENCY must be a whole number from 1 to 256")
            }
            concurrency = value
        }
        if let text = environment["STEWARD_JOBS_POLL_SECONDS"] {
            guard let value = Double(text), value > 0, value <= 3_600 else {
                throw CLIError("STEWARD_JOBS_POLL_SECONDS must be a number of seconds above 0 and at most 3600")
            }
            pollInterval = .milliseconds(Int64(value * 1_000))
        }
        if let text = environment["STEWARD_JOBS_LEASE_SECONDS"] {
            guard let value = Double(text), value >= 1, value <= 3_600 else {
                throw CLIError("STEWARD_JOBS_LEASE_SECONDS must be a number of seconds from 1 to 3600")
            }
            leaseDuration = .milliseconds(Int64(value * 1_000))
            heartbeatInterval = .milliseconds(Int64(value * 1_000 / 3))
        }
    }
}

extension JobsCommand {
    /// How soon an idle runner starts a job enqueued in its own process (Scripts/bench-jobs.sh).
    struct Latency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Measure how soon an idle runner starts a job enqueued in its process (writes jobs: use a scratch database).",
            discussion: """
                Enqueues one job at a time, each after the previous finished, into an in-process runner, and \
                prints percentiles of: the enqueue's commit, and from that commit to the job's start (the \
                wake-up and the lease's own write). The commit of one write is the floor a lease cannot beat.
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "How many jobs (1 to 100000).") var count = 500

        func validate() throws {
            guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1 to 100000") }
        }

        /// Records when each job's handler starts.
        struct Marker: JobHandler {
            struct Payload: Codable, Sendable {}
            struct Cursor: Codable, Sendable {}
            struct Summary: Codable, Sendable {}
            static let kind = "steward.latency"
            let started: Starts

            func run(_ job: JobExecution<Marker>) async throws -> Summary {
                started.value.withLock { $0[job.record.id] = ContinuousClock.now }
                return Summary()
            }
        }

        final class Starts: Sendable {
            let value = Mutex<[UUID: ContinuousClock.Instant]>([:])
        }

        func run() async throws {
            let logger = Wiring.makeLogger(common)
            let setup = try Wiring.open(common, logger: logger, needsPolicy: false)
            let (commits, starts) = try await setup.withStore { wiring -> ([Duration], [Duration]) in
                let wakeup = JobWakeup()
                let started = Starts()
                let runner = JobRunner(
                    store: wiring.store, runtime: wiring.runtime,
                    configuration: .init(concurrency: 1, pollInterval: .seconds(60)), wakeup: wakeup, logger: logger
                ).registering(Marker(started: started))
                let queue = JobQueue(store: wiring.store, runtime: wiring.runtime, wakeup: wakeup)
                return try await withThrowingTaskGroup(of: ([Duration], [Duration]).self) { group in
                    group.addTask {
                        try await runner.run()
                        return ([], [])
                    }
                    group.addTask {
                        var commits: [Duration] = []
                        var starts: [Duration] = []
                        for _ in 0..<count {
                            let before = ContinuousClock.now
                            let job = try await queue.enqueue(Marker.self, payload: .init(), actor: cliActor).job
                            let committed = ContinuousClock.now
                            var start: ContinuousClock.Instant?
                            while start == nil {
                                start = started.value.withLock { $0[job.id] }
                                if start == nil { try await Task.sleep(for: .microseconds(200)) }
                            }
                            // Wait for the finish to commit too, so the next job meets an idle runner.
                            while try await wiring.store.read({ try await $0.job(id: job.id) })?.state != .succeeded {
                                try await Task.sleep(for: .microseconds(200))
                            }
                            commits.append(committed - before)
                            starts.append(start! - committed)
                        }
                        runner.stop()
                        return (commits, starts)
                    }
                    var result: ([Duration], [Duration]) = ([], [])
                    for try await value in group where !value.0.isEmpty { result = value }
                    return result
                }
            }
            func percentile(_ values: [Duration], _ p: Double) -> Double {
                let sorted = values.sorted()
                let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
                return Double(sorted[max(0, index)] / .microseconds(1)) / 1_000
            }
            func line(_ name: String, _ values: [Duration]) -> String {
                String(
                    format: "%@: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms", name, percentile(values, 0.5),
                    percentile(values, 0.9), percentile(values, 0.99), percentile(values, 1))
            }
            print(line("enqueue commit", commits))
            print(line("commit to start", starts))
            print(
                String(
                    format: "start / one commit (p50): %.2f×",
                    percentile(starts, 0.5) / max(percentile(commits, 0.5), 0.001)))
        }
    }
}
