public import Foundation
public import StewardCore
import Synchronization

/// How Steward carries out a request in the customer's systems: the data map to plan from, and
/// the connector work for one system (`RequestExecutor` in StewardConnectors, wired by the
/// binary). `hash` is the keyed hash of the `hash` strategy; `beforeCommit` runs after the
/// system's re-read and before its commit.
public struct RequestExecution: Sendable {
    public typealias Execute =
        @Sendable (
            _ system: String, _ type: RequestType, _ identities: SubjectIdentities, _ corrections: [Correction],
            _ hash: @escaping @Sendable (String) -> String,
            _ beforeCommit: @escaping @Sendable (SystemReceipt) async throws -> Void
        ) async throws -> (receipt: SystemReceipt, rows: SubjectRows?)

    /// Sends one delivery to an `http` system and reads its answer (`HTTPSystemClient`).
    public typealias Deliver =
        @Sendable (_ system: String, _ delivery: SystemDelivery, _ identities: SubjectIdentities) async throws ->
        DeliveryAnswer

    public var map: DataMap
    public var queue: JobQueue
    public var execute: Execute
    public var deliver: Deliver?

    public init(map: DataMap, queue: JobQueue, execute: @escaping Execute, deliver: Deliver? = nil) {
        self.map = map
        self.queue = queue
        self.execute = execute
        self.deliver = deliver
    }
}

/// One (request, system) task on the job queue (ADR 0011). The system's work is one transaction
/// there; its receipt is recorded in Steward's store before that transaction commits (the job's
/// cursor), and the task's completion after. A rerun after a crash between the two finds nothing
/// left to change and keeps the recorded receipt: each effect is applied, and counted, once.
public struct RequestTaskJob: JobHandler {
    public struct Payload: Codable, Sendable, Hashable {
        public var request: UUID
        public var system: String
    }

    public struct Cursor: Codable, Sendable {
        /// The receipt of the attempt whose commit may have happened.
        public var pending: SystemReceipt?
        /// The task's completion is recorded: only the job's own end is left.
        public var recorded: Bool
        /// An `http` system's current delivery, chosen before it is first sent (a resend after a
        /// crash carries the same id), and whether the system took it on to call back.
        public var delivery: UUID?
        public var accepted: Bool?
    }

    /// The system's receipt, or (an `http` system that took the delivery on) the delivery its
    /// callback must name.
    public struct Summary: Codable, Sendable {
        public var receipt: SystemReceipt?
        public var awaitingCallback: UUID?
    }
    public static let kind = "dsr.task"
    public static var maxAttempts: Int { 5 }

    let service: RequestService

    public init(service: RequestService) { self.service = service }

    public func run(_ job: JobExecution<Self>) async throws -> Summary {
        if let cursor = job.cursor, cursor.recorded, let receipt = cursor.pending { return Summary(receipt: receipt) }
        guard let execution = service.execution else {
            throw JobPermanentFailure(StewardError(.internalError, "this Steward carries out no requests"))
        }
        let payload = job.payload
        let found: (DataSubjectRequestRecord, [IdentityRecord], [RequestTaskRecord], Data?)? = try await service.store
            .read { reader in
                guard let request = try await reader.dataSubjectRequest(id: payload.request) else { return nil }
                return (
                    request, try await reader.identities(subjectID: request.subjectID),
                    try await reader.requestTasks(requestID: request.id),
                    try await reader.requestDetails(requestID: request.id)
                )
            }
        guard let (request, stored, tasks, sealedDetails) = found else {
            throw JobPermanentFailure(StewardError(.requestNotFound, "the task's request is gone", field: "request"))
        }
        let task = tasks.first { $0.system == payload.system }
        // Recorded already (an http system's callback came first): nothing is sent again.
        if let task, task.state == .done {
            return Summary(
                receipt: try task.receipt.map { try JobCoding.decode(SystemReceipt.self, from: $0, field: "receipt") })
        }
        guard request.status == .executing else {
            throw JobPermanentFailure(
                StewardError(
                    .requestInvalidTransition,
                    "the request is \(request.status.rawValue): its systems' work does not run"))
        }
        var values: [IdentityKind: [String]] = [:]
        for identity in stored { values[identity.kind, default: []].append(try service.vault.open(identity)) }
        let particulars = try service.details(sealedDetails, of: request)
        let corrections = particulars.corrections
        let identities = service.identities(values, hashed: particulars.hashedIdentities)
        guard !identities.kinds.isEmpty else {
            // Fail closed: with no identity left to look for, "nothing found" would be a guess.
            throw JobPermanentFailure(
                StewardError(
                    .requestInvalidTransition,
                    "no identity of the person is left to look for (their identities are gone)"
                ))
        }
        if execution.map.system(payload.system)?.kind == .http {
            return try await deliver(
                job, request: request, identities: identities, particulars: particulars, execution: execution)
        }
        // An erasure here waits while systems that find their rows through this one's still have work
        // to do: deleting or unlinking these rows first would hide the subject's rows there.
        if request.type == .erasure {
            let waitFor = execution.map.referencing(payload.system, identities: identities.kinds)
            let pending = tasks.filter { $0.state == .pending && waitFor.contains($0.system) }.map(\.system)
            if !pending.isEmpty {
                throw JobWait(
                    delay: 2,
                    reason:
                        "waiting for \(pending.map { "'\($0)'" }.joined(separator: ", ")): its rows reference this system's, so it erases first"
                )
            }
        }
        let indexer = service.crypto.indexer
        let store = service.store
        let jobID = job.record.id
        let adopted = Mutex<SystemReceipt?>(nil)
        var (receipt, rows) = try await execution.execute(
            payload.system, request.type, identities, corrections,
            { indexer.proofHash($0, kind: "erasure") }
        ) { receipt in
            // A read changes nothing in the system: a retry after a crash reads again and records what
            // it read, so there is nothing to checkpoint before (one transaction fewer per task).
            if request.type.reads { return }
            // Nothing left to change: an earlier attempt committed its work. Its receipt, recorded
            // before that commit, is read from the store now — not from this attempt's start, since
            // an attempt that lost its lease may have committed while this one waited for its locks.
            var keep = receipt
            if receipt.rowsAffected == 0, let text = try await store.read({ try await $0.job(id: jobID) })?.cursor,
                let stored = try? JobCoding.decode(Cursor.self, from: text, field: "cursor"),
                let pending = stored.pending
            {
                keep = pending
                adopted.withLock { $0 = pending }
            }
            try await job.checkpoint(cursor: Cursor(pending: keep, recorded: false), done: 1, total: 2)
        }
        if let earlier = adopted.withLock({ $0 }) { receipt = earlier }
        let sealed = try rows.map { try service.seal($0, request: request) }
        let final = receipt
        let actor = "job:\(job.record.id.lowercasedString)"
        try await job.checkpoint(cursor: Cursor(pending: receipt, recorded: true), done: 2, total: 2) { transaction in
            try await service.record(final, rows: sealed, for: request.id, in: transaction, actor: actor)
        }
        return Summary(receipt: receipt)
    }

    /// An `http` system's task (ADR 0012): the delivery's id is checkpointed before it is first
    /// sent, so a resend after a crash carries the same `Idempotency-Key`. A report in the answer
    /// is recorded like a SQL system's receipt; an accepted delivery waits for the callback.
    func deliver(
        _ job: JobExecution<Self>, request: DataSubjectRequestRecord, identities: SubjectIdentities,
        particulars: RequestDetails, execution: RequestExecution
    ) async throws -> Summary {
        guard let send = execution.deliver else {
            throw JobPermanentFailure(StewardError(.internalError, "this Steward delivers no requests to http systems"))
        }
        let system = job.payload.system
        let id: UUID
        if let delivery = job.cursor?.delivery {
            id = delivery
        } else {
            id = service.runtime.newID()
            try await job.checkpoint(cursor: Cursor(recorded: false, delivery: id), done: 0, total: 2)
        }
        var delivery = SystemDelivery(
            request: request.id, id: id, type: request.type, regime: request.regime, dueAt: request.deadlines.due,
            corrections: particulars.corrections)
        delivery.hashedIdentities = particulars.hashedIdentities
        let answer: DeliveryAnswer
        do {
            answer = try await send(system, delivery, identities)
        } catch let error as StewardError where error.code == .connectorProtocol {
            throw JobPermanentFailure(error)
        } catch let error as any CataloguedError & CustomStringConvertible
            where [.connectorRefused, .connectorProtocol, .connectorNotConfigured].contains(error.code)
        {
            throw JobPermanentFailure(StewardError(error.code, error.description))
        }
        switch answer {
        case .accepted:
            try await job.checkpoint(cursor: Cursor(recorded: false, delivery: id, accepted: true), done: 1, total: 2)
            return Summary(awaitingCallback: id)
        case .reported(let report):
            switch report.outcome {
            case .failed(let reason):
                throw JobPermanentFailure(
                    StewardError(.connectorSystemFailed, "system '\(system)' reported failure: \(reason)"))
            case .completed(let receipt, let rows):
                let sealed = try rows.map { try service.seal($0, request: request) }
                let actor = "job:\(job.record.id.lowercasedString)"
                try await job.checkpoint(
                    cursor: Cursor(pending: receipt, recorded: true, delivery: id), done: 2, total: 2
                ) { transaction in
                    try await service.record(receipt, rows: sealed, for: request.id, in: transaction, actor: actor)
                }
                return Summary(receipt: receipt)
            }
        }
    }
}

extension RequestService {
    /// A request's tasks, each with its job (nil if the job is gone).
    public func tasks(of id: UUID) async throws -> [(task: RequestTaskRecord, job: JobRecord?)] {
        try await store.read { reader in
            var tasks: [(task: RequestTaskRecord, job: JobRecord?)] = []
            for task in try await reader.requestTasks(requestID: id) {
                tasks.append((task, try await reader.job(id: task.jobID)))
            }
            return tasks
        }
    }

    /// Where an open request stands against its deadline (nil once it is terminal).
    public func standing(of request: DataSubjectRequestRecord, now: Date) -> DeadlineStanding? {
        guard !request.status.isTerminal else { return nil }
        let warning = regimes.first { $0.key == request.regime }?.warning ?? 7 * 86_400
        return DeadlineStanding.of(due: request.deadlines.due, now: now, warning: warning)
    }

    static func taskIdempotencyKey(_ request: UUID, system: String) -> String {
        "dsr:\(request.lowercasedString):\(system)"
    }

    /// Starts an approved request in the same transaction: one task and one job per system the plan
    /// reaches, status `executing`, audited. A request that reaches no system completes at once.
    /// Without an execution (or for the types that change no customer data, whose work is not
    /// built yet) the request stays approved.
    func start(
        _ record: inout DataSubjectRequestRecord, in transaction: any StoreTransaction, actor: String
    ) async throws {
        if !record.type.touchesCustomerData, let consent {
            try await recordDenials(&record, consent: consent, in: transaction, actor: actor)
            return
        }
        guard let execution, record.type.touchesCustomerData else { return }
        let particulars = try details(try await transaction.requestDetails(requestID: record.id), of: record)
        let kinds = Set(try await transaction.identities(subjectID: record.subjectID).map(\.kind))
            .union(particulars.hashedIdentities.map(\.kind))
        let plan = execution.map.plan(record.type, identities: kinds, corrections: particulars.corrections)
        let now = runtime.now()
        for system in plan.systems {
            let job = try execution.queue.job(
                RequestTaskJob.self, payload: .init(request: record.id, system: system),
                idempotencyKey: Self.taskIdempotencyKey(record.id, system: system), actor: actor)
            let enqueued = try await transaction.enqueueJob(job)
            try await transaction.insertRequestTask(
                RequestTaskRecord(
                    requestID: record.id, system: system, jobID: enqueued.job.id, state: .pending, updatedAt: now))
        }
        record.status = .executing
        record.updatedAt = now
        var drafts = [
            AuditDraft(
                actor: actor, action: "request.start", targetType: "request", targetID: record.id.lowercasedString,
                details: [
                    "from": RequestStatus.approved.rawValue, "to": RequestStatus.executing.rawValue,
                    "systems": plan.systems.joined(separator: ","), "unreached": String(plan.unreached.count),
                ])
        ]
        if plan.systems.isEmpty {
            record.status = .completed
            record.finishedAt = now
            try await finished(record, in: transaction)
            var completion = ["from": "executing", "to": "completed", "systems": "0"]
            if record.type == .erasure {
                completion["suppressed"] = String(try await suppress(record, now: now, in: transaction))
            }
            drafts.append(
                AuditDraft(
                    actor: actor, action: "request.complete", targetType: "request",
                    targetID: record.id.lowercasedString, details: completion))
        }
        try await transaction.updateDataSubjectRequest(record)
        try await log(drafts, in: transaction)
    }

    /// Opt-out, limit, objection and restriction (issue 18 item 3): a denial of every purpose the
    /// request covers (`RequestType.affectedPurposes`), recorded as consent events (method
    /// `data_subject_request`, source `request:<id>`) the consent check answers from at once; the
    /// request completes in the same transaction. A later grant by the person lifts it for that
    /// purpose, as any later decision does.
    func recordDenials(
        _ record: inout DataSubjectRequestRecord, consent: ConsentService, in transaction: any StoreTransaction,
        actor: String
    ) async throws {
        let purposes = record.type.affectedPurposes(consent.policy)
        var drafts: [AuditDraft] = []
        var cache: BatchCache? = BatchCache()
        for key in purposes {
            let purpose = try consent.policy.purpose(key)
            _ = try await consent.apply(
                ConsentService.RecordCommand(
                    subject: .id(record.subjectID), purpose: key, decision: .denied, method: .dataSubjectRequest,
                    source: "request:\(record.id.lowercasedString)", actor: actor),
                purpose: purpose, in: transaction, audit: &drafts, cache: &cache)
        }
        try await ConsentService.writeOrdinals(of: cache, lockedAt: [:], in: transaction)
        let now = runtime.now()
        record.status = .completed
        record.finishedAt = now
        record.updatedAt = now
        try await transaction.updateDataSubjectRequest(record)
        drafts.append(
            AuditDraft(
                actor: actor, action: "request.complete", targetType: "request",
                targetID: record.id.lowercasedString,
                details: [
                    "from": RequestStatus.approved.rawValue, "to": RequestStatus.completed.rawValue,
                    "purposes_denied": purposes.joined(separator: ","),
                ]))
        try await log(drafts, in: transaction)
    }

    /// After an erasure: Steward's own identities of the subject are deleted, and one suppression
    /// entry (kind and keyed hash) kept per identity, to recognise the person in a restored system.
    /// Returns the number of entries.
    func suppress(_ request: DataSubjectRequestRecord, now: Date, in transaction: any StoreTransaction) async throws
        -> Int
    {
        let identities = try await transaction.identities(subjectID: request.subjectID)
        for identity in identities {
            try await transaction.insertSuppression(
                SuppressionRecord(
                    kind: identity.kind, blindIndex: identity.blindIndex, requestID: request.id, erasedAt: now))
        }
        _ = try await transaction.deleteIdentities(subjectID: request.subjectID)
        return identities.count
    }

    /// A request's particulars (corrections, hashed identities), sealed under the field key, bound
    /// to the request and subject.
    func seal(_ details: RequestDetails, request: DataSubjectRequestRecord) throws -> Data {
        try crypto.cipher.seal(
            try JSONEncoder().encode(details),
            context: FieldContext(
                table: "dsr_details", column: "sealed", rowID: request.id, subjectID: request.subjectID))
    }

    /// The particulars of a request, opened (none stored: empty). Fail closed: a rectification whose
    /// corrections are gone, or particulars that do not open under their request, are refused —
    /// never carried out with nothing to set.
    func details(_ sealed: Data?, of request: DataSubjectRequestRecord) throws -> RequestDetails {
        guard let sealed else {
            guard request.type != .rectification else {
                throw StewardError(
                    .requestInvalidTransition,
                    "the rectification's corrections are gone (it finished, or they were never stored)")
            }
            return RequestDetails()
        }
        let plaintext = try crypto.cipher.open(
            sealed,
            context: FieldContext(
                table: "dsr_details", column: "sealed", rowID: request.id, subjectID: request.subjectID))
        return try JSONDecoder().decode(RequestDetails.self, from: plaintext)
    }

    /// The identities a task looks for: the subject's, opened from the vault, and those given as
    /// SHA-256, recognised by hashing a system's identity values as Steward normalises them.
    func identities(_ values: [IdentityKind: [String]], hashed: [HashedIdentity]) -> SubjectIdentities {
        guard !hashed.isEmpty else { return SubjectIdentities(values) }
        let wanted = Set(hashed.map { "\($0.kind.rawValue):\($0.sha256)" })
        let secrets = crypto.secrets
        return SubjectIdentities(
            values,
            recognition: IdentityRecognition(kinds: Set(hashed.map(\.kind))) { kind, raw in
                guard let identity = try? NormalizedIdentity(kind: kind, raw: raw) else { return false }
                // SHA-256 of the normalised value, as the caller hashed it.
                let digest = secrets.digest(identity.value).hexString
                return wanted.contains("\(kind.rawValue):\(digest)")
            })
    }

    /// A request reached a terminal status: a rectification's corrected values are deleted with it
    /// (a failed request keeps them, to be retried).
    func finished(_ request: DataSubjectRequestRecord, in transaction: any StoreTransaction) async throws {
        guard request.status != .failed else { return }
        try await transaction.deleteRequestDetails(requestID: request.id)
    }

    /// The rows read for access, sealed under the field key, bound to the request and subject.
    func seal(_ rows: SubjectRows, request: DataSubjectRequestRecord) throws -> Data {
        try crypto.cipher.seal(
            try JSONEncoder().encode(rows),
            context: FieldContext(
                table: "dsr_tasks", column: rows.system, rowID: request.id, subjectID: request.subjectID))
    }

    /// The rows a task read, opened (refused if they do not open under their request and subject).
    public func rows(of task: RequestTaskRecord, request: DataSubjectRequestRecord) throws -> SubjectRows? {
        guard let sealed = task.sealedRows else { return nil }
        let plaintext = try crypto.cipher.open(
            sealed,
            context: FieldContext(
                table: "dsr_tasks", column: task.system, rowID: request.id, subjectID: request.subjectID))
        return try JSONDecoder().decode(SubjectRows.self, from: plaintext)
    }

    /// Records a system's receipt and completes the request when it was the last task, in the
    /// transaction of the job's final checkpoint. The request's row is locked first, so two tasks
    /// finishing together complete it once.
    func record(
        _ receipt: SystemReceipt, rows: Data?, for id: UUID, in transaction: any StoreTransaction, actor: String
    ) async throws {
        guard var request = try await transaction.lockDataSubjectRequest(id: id) else {
            throw StewardError(.requestNotFound, "the task's request is gone", field: "request")
        }
        let tasks = try await transaction.requestTasks(requestID: id)
        guard var task = tasks.first(where: { $0.system == receipt.system }) else {
            throw StoreError.integrity("dsr_tasks has no row for the request's system \(receipt.system)")
        }
        // Recorded already by an attempt that lost its lease after recording: once is enough.
        guard task.state != .done else { return }
        let now = runtime.now()
        task.state = .done
        task.receipt = try JobCoding.encode(receipt)
        task.sealedRows = rows
        task.updatedAt = now
        try await transaction.updateRequestTask(task)
        var details = [
            "system": receipt.system, "verified": receipt.verified ? "yes" : "no",
            "located": String(receipt.rowsLocated),
        ]
        for collection in receipt.collections { details["collection." + collection.collection] = collection.summary }
        var drafts = [
            AuditDraft(
                actor: actor, action: receipt.type == .erasure ? "request.erasure_receipt" : "request.system_done",
                targetType: "request", targetID: id.lowercasedString, details: details)
        ]
        if request.status == .executing, tasks.allSatisfy({ $0.system == receipt.system || $0.state == .done }) {
            request.status = .completed
            request.finishedAt = now
            try await finished(request, in: transaction)
            request.updatedAt = now
            try await transaction.updateDataSubjectRequest(request)
            var completion = ["from": "executing", "to": "completed", "systems": String(tasks.count)]
            if request.type == .erasure {
                completion["suppressed"] = String(try await suppress(request, now: now, in: transaction))
            }
            drafts.append(
                AuditDraft(
                    actor: actor, action: "request.complete", targetType: "request", targetID: id.lowercasedString,
                    details: completion))
        }
        try await log(drafts, in: transaction)
    }
}

extension RequestService {
    public enum CallbackOutcome: String, Sendable {
        /// The report completed the system's task (and the request, if it was the last).
        case recorded
        /// The task was complete already: a repeated callback changes nothing.
        case alreadyRecorded = "already_recorded"
        /// The system reported failure: its task's job needs attention (an operator retries it,
        /// which sends a new delivery).
        case failureRecorded = "failure_recorded"
    }

    /// The part of a request's plan one system carries out, from the subject's identities now.
    public func plan(of request: DataSubjectRequestRecord, system: String) async throws -> RequestPlan {
        guard let execution else {
            throw StewardError(.internalError, "this Steward carries out no requests")
        }
        let (identities, sealed) = try await store.read { reader in
            (
                try await reader.identities(subjectID: request.subjectID),
                try await reader.requestDetails(requestID: request.id)
            )
        }
        let particulars = try details(sealed, of: request)
        return execution.map.plan(
            request.type, identities: Set(identities.map(\.kind)).union(particulars.hashedIdentities.map(\.kind)),
            corrections: particulars.corrections
        ).only(system: system)
    }

    /// An `http` system's callback (its signature checked by the caller): records its report for
    /// the delivery its task is waiting on, in one transaction with the request row locked.
    public func callback(request id: UUID, system: String, report: SystemReport) async throws -> CallbackOutcome {
        let actor = "system:\(system)"
        let now = runtime.now()
        let sealed: Data?
        if case .completed(_, let rows?) = report.outcome {
            guard let request = try await store.read({ try await $0.dataSubjectRequest(id: id) }) else {
                throw StewardError(.requestNotFound, "no data subject request has this id", field: "id")
            }
            sealed = try seal(rows, request: request)
        } else {
            sealed = nil
        }
        return try await store.writeRetrying { transaction in
            guard let request = try await transaction.lockDataSubjectRequest(id: id) else {
                throw StewardError(.requestNotFound, "no data subject request has this id", field: "id")
            }
            guard let task = try await transaction.requestTasks(requestID: id).first(where: { $0.system == system })
            else {
                throw StewardError(
                    .requestCallbackStale, "the request has no task in system '\(system)'", field: "system")
            }
            if task.state == .done { return .alreadyRecorded }
            guard request.status == .executing else {
                throw StewardError(
                    .requestInvalidTransition,
                    "the request is \(request.status.rawValue): its systems' work does not run")
            }
            let job = try await transaction.job(id: task.jobID)
            let cursor = try job?.cursor.map {
                try JobCoding.decode(RequestTaskJob.Cursor.self, from: $0, field: "cursor")
            }
            guard let expected = cursor?.delivery, report.delivery == expected else {
                throw StewardError(
                    .requestCallbackStale, "names a delivery that is not the system's current one", field: "delivery")
            }
            switch report.outcome {
            case .completed(let receipt, _):
                try await record(receipt, rows: sealed, for: id, in: transaction, actor: actor)
                return .recorded
            case .failed(let reason):
                let failed = try await transaction.failSucceededJob(
                    id: task.jobID, error: "connector.system_failed: system '\(system)' reported failure: \(reason)",
                    now: now)
                guard failed?.state == .needsAttention else {
                    throw StewardError(
                        .requestCallbackStale, "the delivery is still being sent; call back again shortly",
                        field: "delivery")
                }
                try await log(
                    [
                        AuditDraft(
                            actor: actor, action: "request.system_failed", targetType: "request",
                            targetID: id.lowercasedString, details: ["system": system, "reason": reason])
                    ], in: transaction)
                return .failureRecorded
            }
        }
    }
}

extension RequestService {
    /// The http systems' tasks whose callback is overdue: the system took its delivery on (`202`)
    /// and has not called back within its `callback_within`. Each task's job needs attention (an
    /// operator retries it, which sends a new delivery), audited `request.callback_overdue`, in one
    /// transaction with the request row locked — so a callback arriving meanwhile wins or loses
    /// whole. Returns the (request, system) pairs chased.
    @discardableResult
    public func chaseOverdueCallbacks(actor: String) async throws -> [(request: UUID, system: String)] {
        guard let execution else { return [] }
        let now = runtime.now()
        let overdue: [(task: RequestTaskRecord, within: TimeInterval)] = try await store.read { reader in
            var found: [(task: RequestTaskRecord, within: TimeInterval)] = []
            for task in try await reader.pendingRequestTasks() {
                guard let system = execution.map.system(task.system), system.kind == .http,
                    let job = try await reader.job(id: task.jobID), job.state == .succeeded,
                    let taken = job.finishedAt
                else { continue }
                let within = system.callbackWithin ?? DataSystem.defaultCallbackWithin
                if now >= taken.addingTimeInterval(within) { found.append((task, within)) }
            }
            return found
        }
        var chased: [(request: UUID, system: String)] = []
        for (task, within) in overdue {
            let window =
                within.truncatingRemainder(dividingBy: 86_400) == 0
                ? "\(Int(within / 86_400)) days" : "\(Int(within / 3_600)) hours"
            let done = try await store.writeRetrying { transaction -> Bool in
                guard try await transaction.lockDataSubjectRequest(id: task.requestID) != nil,
                    let current = try await transaction.requestTasks(requestID: task.requestID)
                        .first(where: { $0.system == task.system }),
                    current.state == .pending, current.jobID == task.jobID
                else { return false }
                let failed = try await transaction.failSucceededJob(
                    id: task.jobID,
                    error:
                        "connector.callback_overdue: system '\(task.system)' took the delivery on and has not called back within \(window); retry to send a new delivery",
                    now: now)
                guard failed?.state == .needsAttention else { return false }
                try await log(
                    [
                        AuditDraft(
                            actor: actor, action: "request.callback_overdue", targetType: "request",
                            targetID: task.requestID.lowercasedString,
                            details: ["system": task.system, "within": window])
                    ], in: transaction)
                return true
            }
            if done { chased.append((task.requestID, task.system)) }
        }
        return chased
    }

    /// What reapplying erasures found and did in one system.
    public struct Reapplied: Sendable {
        /// Suppression entries (identities) checked, and the erasures they came from.
        public var identities: Int
        public var erasures: Int
        public var receipt: SystemReceipt?
    }

    /// Re-applies every erasure completed since `since` to `system` — after the system was restored
    /// from a backup taken before them. The subjects are recognised by the keyed hashes of the
    /// suppression entries (no plaintext identity is kept or needed); their rows found again are
    /// erased by the same plan, in one transaction, verified; the outcome is audited.
    public func reapplyErasures(system: String, since: Date, actor: String) async throws -> Reapplied {
        guard let execution else {
            throw StewardError(.internalError, "this Steward carries out no requests")
        }
        let entries = try await store.read { try await $0.suppressions(since: since) }
        let erasures = Set(entries.map(\.requestID)).count
        guard !entries.isEmpty else { return Reapplied(identities: 0, erasures: 0, receipt: nil) }
        struct Key: Hashable {
            var kind: IdentityKind
            var index: Data
        }
        let keys = Set(entries.map { Key(kind: $0.kind, index: $0.blindIndex) })
        let indexer = crypto.indexer
        let recognition = IdentityRecognition(kinds: Set(entries.map(\.kind))) { kind, raw in
            guard let identity = try? NormalizedIdentity(kind: kind, raw: raw) else { return false }
            return keys.contains(Key(kind: kind, index: indexer.index(identity)))
        }
        let (receipt, _) = try await execution.execute(
            system, .erasure, SubjectIdentities([:], recognition: recognition), [],
            { indexer.proofHash($0, kind: "erasure") }, { _ in })
        var details = [
            "system": system, "since": Timestamp.iso8601(since), "identities": String(entries.count),
            "erasures": String(erasures), "found": String(receipt.rowsLocated),
            "verified": receipt.verified ? "yes" : "no",
        ]
        for collection in receipt.collections where collection.located > 0 {
            details["collection." + collection.collection] =
                "found \(collection.located); deleted \(collection.deleted); changed \(collection.changed)"
        }
        let draft = AuditDraft(
            actor: actor, action: "request.erasures_reapplied", targetType: "system", targetID: system, details: details
        )
        try await store.writeRetrying { transaction in try await log([draft], in: transaction) }
        return Reapplied(identities: entries.count, erasures: erasures, receipt: receipt)
    }
}

extension RequestService {
    /// An access or portability request's data for its export package: each system's rows, opened
    /// (refused if any does not open under its request and subject). Audited as a download, with
    /// the actor, in its own transaction before the data is handed out.
    /// A request's export package as `build` makes it from the request and its rows (the ZIP),
    /// audited as downloaded once it is built: a package that cannot be built is neither sent nor
    /// recorded as sent, and one whose audit entry cannot be written is not sent.
    public func package<Body>(
        of id: UUID, actor: String, build: (DataSubjectRequestRecord, [SubjectRows]) throws -> Body
    ) async throws -> Body {
        let (request, tasks) = try await store.read { reader in
            (try await reader.dataSubjectRequest(id: id), try await reader.requestTasks(requestID: id))
        }
        guard let request else {
            throw StewardError(.requestNotFound, "no data subject request has this id", field: "id")
        }
        _ = try packageExpiry(of: request, tasks: tasks)
        let rows = try tasks.compactMap { try self.rows(of: $0, request: request) }
        let body = try build(request, rows)
        let count = rows.reduce(0) { $0 + $1.collections.values.reduce(0) { $0 + $1.count } }
        let draft = AuditDraft(
            actor: actor, action: "request.package_downloaded", targetType: "request", targetID: id.lowercasedString,
            details: ["systems": rows.map(\.system).joined(separator: ","), "rows": String(count)])
        try await store.writeRetrying { transaction in try await log([draft], in: transaction) }
        return body
    }

    /// When a request's export package stops being available; refused when it has none (not an
    /// access or portability request, not completed) or its time is over.
    func packageExpiry(of request: DataSubjectRequestRecord, tasks: [RequestTaskRecord]) throws -> Date {
        guard request.type.reads else {
            throw StewardError(
                .requestPackageUnavailable,
                "a \(request.type.rawValue) request has no export package (access and portability do)")
        }
        guard request.status == .completed, let finished = request.finishedAt else {
            throw StewardError(
                .requestPackageUnavailable,
                "the request is \(request.status.rawValue): its package comes when it completes")
        }
        let expiry = finished.addingTimeInterval(packageLifetime)
        guard runtime.now() < expiry, tasks.allSatisfy({ $0.sealedRows != nil }) else {
            throw StewardError(
                .requestPackageExpired, "the package could be downloaded until \(Timestamp.iso8601(expiry))")
        }
        return expiry
    }

    /// A download link to a request's export package, for the person (issue 18 item 6): a
    /// single-purpose bearer token (`dl_` and 32 random bytes, shown once; Steward keeps its SHA-256)
    /// that opens this request's package and nothing else, for as long as the package is kept.
    public struct PackageLink: Sendable, Hashable {
        public var token: String
        public var expiresAt: Date
    }

    public func packageLink(for id: UUID, actor: String) async throws -> PackageLink {
        try await store.writeRetrying { transaction in
            guard let request = try await transaction.dataSubjectRequest(id: id) else {
                throw StewardError(.requestNotFound, "no data subject request has this id", field: "id")
            }
            let expiresAt = try packageExpiry(of: request, tasks: try await transaction.requestTasks(requestID: id))
            let token = "dl_" + Data(runtime.randomBytes(32)).base64URLString
            try await transaction.insertPackageLink(
                hash: crypto.secrets.digest(token), requestID: id, createdAt: runtime.now())
            try await log(
                [
                    AuditDraft(
                        actor: actor, action: "request.package_link_created", targetType: "request",
                        targetID: id.lowercasedString, details: ["expires_at": Timestamp.iso8601(expiresAt)])
                ], in: transaction)
            return PackageLink(token: token, expiresAt: expiresAt)
        }
    }

    /// The package a download link opens, audited as downloaded by the link (its hash's first 12
    /// hex digits: which link, never the token). An unknown token is `request.link_unknown`.
    public func package<Body>(
        link token: String, build: (DataSubjectRequestRecord, [SubjectRows]) throws -> Body
    ) async throws -> Body {
        let hash = crypto.secrets.digest(token)
        guard let link = try await store.read({ try await $0.packageLink(hash: hash) }) else {
            throw StewardError(.requestLinkUnknown, "no export package has this link", field: "token")
        }
        let tag = Data(hash.prefix(6)).hexString
        return try await package(of: link.requestID, actor: "link:\(tag)", build: build)
    }

    /// Deletes the data of every export package whose time is over, one audit entry per request,
    /// in one transaction; the requests purged.
    @discardableResult
    public func purgeExpiredPackages(actor: String) async throws -> [UUID] {
        let now = runtime.now()
        return try await store.writeRetrying { transaction in
            let purged = try await transaction.purgeSealedRows(
                finishedBefore: now.addingTimeInterval(-packageLifetime), now: now)
            guard !purged.isEmpty else { return [] }
            try await log(
                purged.map {
                    AuditDraft(
                        actor: actor, action: "request.package_purged", targetType: "request",
                        targetID: $0.lowercasedString, details: [:])
                }, in: transaction)
            return purged
        }
    }
}
