public import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle
import StewardCore
import Synchronization

/// Runs durable jobs: leases due jobs of its handlers' kinds (at most `concurrency` at once), runs
/// each with a heartbeat that keeps its lease, and ends each lease — succeeded, retried after a
/// backoff, needing attention, cancelled, or released. Woken at once by a job enqueued in this
/// process (`JobWakeup`), by polling for jobs enqueued elsewhere.
///
/// On graceful shutdown (SIGTERM) it stops leasing, asks running jobs to stop at their next
/// checkpoint, and releases them — queued again at once, the attempt not counted — so another
/// instance resumes them from their cursor without waiting for a lease to expire. After SIGKILL the
/// lease expires and another runner takes the job; work past its last checkpoint is not committed.
public final class JobRunner: Service, Sendable {
    public struct Configuration: Sendable {
        /// Who holds leases, in logs and `jobs show` (host and process id by default).
        public var owner: String
        public var concurrency: Int
        /// How often to look for jobs enqueued by other instances.
        public var pollInterval: Duration
        public var leaseDuration: Duration
        /// How often a running job's lease is extended between its checkpoints.
        public var heartbeatInterval: Duration

        public init(
            owner: String = Configuration.defaultOwner, concurrency: Int = 4, pollInterval: Duration = .seconds(1),
            leaseDuration: Duration = .seconds(30), heartbeatInterval: Duration = .seconds(10)
        ) {
            self.owner = owner
            self.concurrency = max(1, concurrency)
            self.pollInterval = pollInterval
            self.leaseDuration = leaseDuration
            self.heartbeatInterval = heartbeatInterval
        }

        public static var defaultOwner: String {
            "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)"
        }
    }

    struct Registered: Sendable {
        let oneAtATime: Bool
        let run: @Sendable (JobRecord, JobRunner, JobControl) async throws -> String
    }

    let store: any StewardStore
    let runtime: Runtime
    let configuration: Configuration
    let wakeup: JobWakeup
    let logger: Logger
    /// Job durations by kind and outcome (`steward_job_duration_seconds`), when given.
    let metrics: (any MetricsFactory)?
    private let handlers: [String: Registered]
    private let state = Mutex<(stopping: Bool, running: [UUID: JobControl])>((false, [:]))
    /// Stops after the queue has no due job of its kinds (`steward jobs work --until-idle`).
    let untilIdle: Bool

    public init(
        store: any StewardStore, runtime: Runtime, configuration: Configuration = Configuration(),
        wakeup: JobWakeup = JobWakeup(), untilIdle: Bool = false, metrics: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
        self.runtime = runtime
        self.configuration = configuration
        self.wakeup = wakeup
        self.untilIdle = untilIdle
        self.logger = logger
        self.handlers = [:]
    }

    private init(copying other: JobRunner, handlers: [String: Registered]) {
        store = other.store
        runtime = other.runtime
        configuration = other.configuration
        wakeup = other.wakeup
        untilIdle = other.untilIdle
        logger = other.logger
        metrics = other.metrics
        self.handlers = handlers
    }

    /// This runner with `handler` registered for its kind.
    public func registering<Handler: JobHandler>(_ handler: Handler) -> JobRunner {
        var handlers = self.handlers
        handlers[Handler.kind] = Registered(oneAtATime: Handler.oneAtATime) { record, runner, control in
            try await runner.execute(handler, record: record, control: control)
        }
        return JobRunner(copying: self, handlers: handlers)
    }

    public var kinds: [String] { handlers.keys.sorted() }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            await self.loop()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops leasing and asks running jobs to stop at their next checkpoint.
    public func stop() {
        let running = state.withLock { state -> [JobControl] in
            state.stopping = true
            return Array(state.running.values)
        }
        for control in running { control.requestShutdown() }
        wakeup.signal()
    }

    var stopping: Bool { state.withLock { $0.stopping } }

    func loop() async {
        let kinds = self.kinds
        let oneAtATime = Set(handlers.filter { $0.value.oneAtATime }.keys)
        await withDiscardingTaskGroup { group in
            while !stopping && !Task.isCancelled {
                let free = configuration.concurrency - state.withLock { $0.running.count }
                var leased: [JobRecord] = []
                if free > 0 {
                    do {
                        leased = try await lease(kinds: kinds, oneAtATime: oneAtATime, limit: free)
                    } catch {
                        logger.error(
                            "leasing jobs failed; trying again after the poll interval",
                            metadata: ["error.type": "\(JobRunner.describe(error))"])
                    }
                }
                for job in leased {
                    let control = JobControl()
                    let stopNow = state.withLock { state -> Bool in
                        state.running[job.id] = control
                        return state.stopping
                    }
                    if stopNow { control.requestShutdown() }
                    group.addTask {
                        await self.runOne(job, control: control)
                        _ = self.state.withLock { $0.running.removeValue(forKey: job.id) }
                        self.wakeup.signal()
                    }
                }
                if untilIdle && leased.isEmpty && state.withLock({ $0.running.isEmpty }) && free > 0,
                    (try? await nothingLeft(kinds: kinds)) == true
                {
                    break
                }
                if !leased.isEmpty && leased.count == free { continue }  // there may be more due now
                await wakeup.wait(upTo: configuration.pollInterval)
            }
        }
    }

    /// No job of `kinds` is queued or running anywhere (a job whose runner died counts until its
    /// lease expires and it is run again).
    func nothingLeft(kinds: [String]) async throws -> Bool {
        let counts = try await store.read { try await $0.jobCounts() }
        return !counts.contains { kinds.contains($0.kind) && ($0.state == .queued || $0.state == .running) }
    }

    func lease(kinds: [String], oneAtATime: Set<String>, limit: Int) async throws -> [JobRecord] {
        guard !kinds.isEmpty else { return [] }
        let now = runtime.nowMicros()
        let lease = JobLease(
            owner: configuration.owner, expiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds))
        let newID = runtime.newID
        return try await store.write { transaction in
            try await transaction.leaseJobs(
                kinds: kinds, oneAtATime: oneAtATime, limit: limit, lease: lease, now: now, newLeaseID: newID)
        }
    }

    /// Runs one leased job to the end of its lease.
    func runOne(_ job: JobRecord, control: JobControl) async {
        guard let registered = handlers[job.kind], let leaseID = job.leaseID else { return }
        let started = ContinuousClock.now
        var metadata: Logger.Metadata = [
            "job.id": "\(job.id.lowercasedString)", "job.kind": "\(job.kind)", "job.attempt": "\(job.attempts)",
        ]
        logger.debug("job started", metadata: metadata)
        let outcome: Result<String, any Error> = await {
            do {
                return .success(try await registered.run(job, self, control))
            } catch {
                return .failure(error)
            }
        }()
        let finish: JobFinish?
        switch outcome {
        case .success(let summary): finish = .succeeded(result: summary)
        case .failure(let error):
            if control.lost || error is JobLeaseLost {
                finish = nil  // another runner holds the job now, or will once the lease expires
            } else if case JobStop.cancelled = error {
                finish = .cancelled
            } else if error is JobStop || (error is CancellationError && stopping) || control.stop == .shutdown {
                finish = .released
            } else if let wait = error as? JobWait {
                finish = .waiting(until: runtime.nowMicros().addingTimeInterval(wait.delay), reason: wait.reason)
            } else if let permanent = error as? JobPermanentFailure {
                finish = .needsAttention(error: "\(permanent.error.code): \(permanent.error.detail)")
            } else {
                finish = JobBackoff.finish(
                    error: JobRunner.describe(error), attempts: job.attempts, maxAttempts: job.maxAttempts,
                    now: runtime.nowMicros(), unit: Double.random(in: 0..<1))
            }
        }
        let elapsed = ContinuousClock.now - started
        metadata["job.ms"] = "\(elapsed / .milliseconds(1))"
        if let metrics {
            let outcome = finish.map { JobRunner.outcome($0) } ?? "lease_lost"
            Timer(
                label: "steward_job_duration_seconds", dimensions: [("kind", job.kind), ("outcome", outcome)],
                factory: metrics
            ).recordNanoseconds(Int64(elapsed / .nanoseconds(1)))
        }
        guard let finish else {
            logger.warning("job lease lost; another runner resumes it", metadata: metadata)
            return
        }
        let now = runtime.nowMicros()
        do {
            let finished = try await store.write { transaction in
                try await transaction.finishJob(id: job.id, leaseID: leaseID, finish: finish, now: now)
            }
            metadata["job.state"] = "\(finished.state.rawValue)"
            switch finish {
            case .succeeded, .cancelled, .released: logger.info("job finished", metadata: metadata)
            case .waiting(let until, _):
                metadata["job.run_after"] = "\(Timestamp.iso8601(until))"
                logger.debug("job waits for other work", metadata: metadata)
            case .retry(let error, let runAfter):
                metadata["job.error"] = "\(error)"
                metadata["job.retry_at"] = "\(Timestamp.iso8601(runAfter))"
                logger.warning("job failed; retrying after a backoff", metadata: metadata)
            case .needsAttention(let error):
                metadata["job.error"] = "\(error)"
                logger.error("job failed and needs attention", metadata: metadata)
            }
        } catch {
            metadata["error.type"] = "\(JobRunner.describe(error))"
            logger.warning("could not end the job's lease; it runs again once the lease expires", metadata: metadata)
        }
    }

    func execute<Handler: JobHandler>(_ handler: Handler, record: JobRecord, control: JobControl) async throws
        -> String
    {
        let payload: Handler.Payload
        let cursor: Handler.Cursor?
        do {
            payload = try JobCoding.decode(Handler.Payload.self, from: record.payload, field: "payload")
            if let text = record.cursor {
                cursor = try JobCoding.decode(Handler.Cursor.self, from: text, field: "cursor")
            } else {
                cursor = nil
            }
        } catch {
            throw JobPermanentFailure(error)
        }
        let execution = try JobExecution<Handler>(
            record: record, payload: payload, cursor: cursor, store: store, runtime: runtime,
            leaseDuration: configuration.leaseDuration, control: control)
        let work = Task { try await handler.run(execution) }
        // The heartbeat keeps the lease while the handler works between checkpoints, and stops the
        // handler when the lease is lost or an operator cancels the job.
        let heartbeat = Task {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: configuration.heartbeatInterval)
                } catch {
                    return
                }
                let now = runtime.nowMicros()
                let expires = now.addingTimeInterval(configuration.leaseDuration.seconds)
                let (done, total) = execution.progress
                do {
                    let beat = try await store.write { transaction in
                        try await transaction.heartbeatJob(
                            id: record.id, leaseID: execution.leaseID, expiresAt: expires, progressDone: done,
                            progressTotal: total, cursor: nil, now: now)
                    }
                    if beat.cancelRequested { control.requestCancel() }
                } catch is JobLeaseLost {
                    control.markLost()
                    work.cancel()
                    return
                } catch {
                    logger.warning(
                        "job heartbeat failed; trying again",
                        metadata: [
                            "job.id": "\(record.id.lowercasedString)", "error.type": "\(JobRunner.describe(error))",
                        ])
                }
            }
        }
        defer { heartbeat.cancel() }
        let summary = try await withTaskCancellationHandler {
            try await work.value
        } onCancel: {
            work.cancel()
        }
        return try JobCoding.encode(summary)
    }

    static func outcome(_ finish: JobFinish) -> String {
        switch finish {
        case .succeeded: "succeeded"
        case .retry: "retry"
        case .needsAttention: "needs_attention"
        case .cancelled: "cancelled"
        case .released: "released"
        case .waiting: "waiting"
        }
    }

    /// An error as logs and `last_error` may show it: a code and detail, or a type — never values.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as StewardError: "\(error.code): \(error.detail)"
        case let error as StoreError:
            switch error {
            case .uniqueViolation: "store.unique_violation"
            case .conflict: "store.conflict"
            case .unavailable(let reason): "store.unavailable: \(reason)"
            case .integrity(let reason): "store.integrity: \(reason)"
            }
        case is CancellationError: "job.cancelled_task"
        // A connector's error: its text names systems, statuses and SQLSTATEs, never a value.
        case let error as any CataloguedError & CustomStringConvertible: "\(error.code): \(error.description)"
        default: String(reflecting: type(of: error))
        }
    }
}
