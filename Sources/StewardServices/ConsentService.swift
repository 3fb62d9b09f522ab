public import Foundation
public import Metrics
public import StewardCore

/// How a request names a subject: by one of its identities, or by Steward's subject id.
public enum SubjectReference: Sendable, Hashable {
    case identity(NormalizedIdentity)
    case id(UUID)
}

/// Records, confirms and answers consent: the ledger's use cases.
public struct ConsentService: Sendable {
    public let store: any StewardStore
    public let crypto: CryptoSuite
    public let policy: PolicySet
    public let runtime: Runtime
    /// Where `steward_consent_events_total{decision, method}` is counted, after each commit, for
    /// single, confirmed and bulk records alike; nil counts nothing (one-shot commands).
    public let metrics: (any MetricsFactory)?
    let audit: AuditLog

    public init(
        store: any StewardStore, crypto: CryptoSuite, policy: PolicySet, runtime: Runtime,
        metrics: (any MetricsFactory)? = nil
    ) {
        self.store = store
        self.crypto = crypto
        self.policy = policy
        self.runtime = runtime
        self.metrics = metrics
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
    }

    /// Counts committed events by decision and method (labels from closed sets; no data values).
    func countCommitted(events: [ConsentEvent]) {
        var tally: [EventKind: Int] = [:]
        Self.tally(events, into: &tally)
        countCommitted(tally)
    }

    func countCommitted(_ tally: [EventKind: Int]) {
        guard let metrics else { return }
        for (kind, count) in tally where count > 0 {
            Counter(
                label: "steward_consent_events_total",
                dimensions: [("decision", kind.decision.rawValue), ("method", kind.method.rawValue)], factory: metrics
            ).increment(by: count)
        }
    }

    struct EventKind: Hashable {
        var decision: ConsentDecision
        var method: ConsentMethod
    }

    static func tally(_ events: [ConsentEvent], into tally: inout [EventKind: Int]) {
        for event in events { tally[EventKind(decision: event.decision, method: event.method), default: 0] += 1 }
    }

    /// One decision to record.
    public struct RecordCommand: Sendable {
        public var subject: SubjectReference
        public var purpose: String
        public var decision: ConsentDecision
        public var method: ConsentMethod
        public var notice: PolicySet.NoticeKey?
        public var source: String?
        public var proofIP: String?
        public var proofUserAgent: String?
        public var consentString: String?
        /// The request carried `Sec-GPC: 1`.
        public var globalPrivacyControl: Bool
        public var actor: String
        /// Proof of an earlier double opt-in confirmation (imports from another platform): when the
        /// person confirmed. Only with method `import` and decision `granted`.
        public var confirmedAt: Date?

        public init(
            subject: SubjectReference, purpose: String, decision: ConsentDecision, method: ConsentMethod,
            notice: PolicySet.NoticeKey? = nil, source: String? = nil, proofIP: String? = nil,
            proofUserAgent: String? = nil, consentString: String? = nil, globalPrivacyControl: Bool = false,
            actor: String, confirmedAt: Date? = nil
        ) {
            self.subject = subject
            self.purpose = purpose
            self.decision = decision
            self.method = method
            self.notice = notice
            self.source = source
            self.proofIP = proofIP
            self.proofUserAgent = proofUserAgent
            self.consentString = consentString
            self.globalPrivacyControl = globalPrivacyControl
            self.actor = actor
            self.confirmedAt = confirmedAt
        }
    }

    public struct RecordOutcome: Sendable {
        public var subjectID: UUID
        public var subjectCreated: Bool
        public var event: ConsentEvent
        public var state: ConsentState
        /// For a pending double opt-in grant: the single-use token to mail to the person. Shown once.
        public var confirmationToken: String?
        public var confirmationExpiresAt: Date?
        /// Opt-outs recorded because the request carried a Global Privacy Control signal.
        public var gpcEvents: [ConsentEvent]

        public var allEvents: [ConsentEvent] { [event] + gpcEvents }
    }

    // MARK: Validation

    /// Checks a command against the policy before any transaction starts.
    public func validate(_ command: RecordCommand) throws(StewardError) -> Purpose {
        let purpose = try policy.purpose(command.purpose)
        if purpose.mechanism == .noticeOnly {
            throw .unprocessable(
                "purpose.not_consentable", "the purpose is notice-only: there is no choice to record",
                field: "purpose")
        }
        if command.method == .doubleOptIn || command.method == .gpc {
            throw .unprocessable(
                "consent.method_reserved",
                "method \(command.method.rawValue) is recorded by Steward itself (use /v1/consents/confirm or Sec-GPC)",
                field: "method")
        }
        if let notice = command.notice {
            guard policy.notices[notice] != nil else {
                throw .unprocessable(
                    "notice.unknown", "is not a notice version declared in the policy", field: "notice")
            }
        } else if command.decision == .granted && purpose.legalBasis == .consent {
            throw .unprocessable(
                "consent.notice_required", "a grant of consent must name the notice id and version shown",
                field: "notice")
        }
        if let confirmedAt = command.confirmedAt {
            guard command.decision == .granted, command.method == .import else {
                throw .unprocessable(
                    "consent.confirmed_at_not_allowed",
                    "only a grant with method import may carry the time of an earlier confirmation",
                    field: "confirmedAt")
            }
            // A confirmation cannot lie in the future (a minute of clock skew between systems aside).
            guard confirmedAt <= runtime.now().addingTimeInterval(60) else {
                throw .unprocessable("consent.confirmed_at_in_future", "lies in the future", field: "confirmedAt")
            }
        }
        if let source = command.source {
            try FreeText.check(source, field: "source", maxLength: 200, lengthCode: "consent.source_too_long")
        }
        if let string = command.consentString {
            // TCF / GPP / US-privacy strings are ASCII (base64url and a few separators).
            if string.utf8.count > 8_192 {
                throw .invalid("consent.string_too_long", "must be at most 8192 bytes", field: "consentString")
            }
            try FreeText.check(
                string, field: "consentString", maxLength: 8_192, kind: .identifier,
                lengthCode: "consent.string_too_long")
        }
        return purpose
    }

    // MARK: Recording

    /// Records one decision: subject found or created, event appended, state updated, GPC opt-outs
    /// applied and audit entries sealed — one transaction.
    public func record(_ command: RecordCommand) async throws -> RecordOutcome {
        let purpose = try validate(command)
        let outcome = try await writeRetrying { transaction in
            var drafts: [AuditDraft] = []
            // A batch of one: a subject this write creates takes its ordinals and earlier (no) states
            // from the cache instead of asking the store.
            var cache: BatchCache? = BatchCache()
            let outcome = try await self.apply(
                command, purpose: purpose, in: transaction, audit: &drafts, cache: &cache)
            try await Self.writeOrdinals(of: cache, lockedAt: [:], in: transaction)
            try await self.audit.append(drafts, in: transaction)
            return outcome
        }
        countCommitted(events: outcome.allEvents)
        return outcome
    }

    /// One line of a bulk import: either a command or the reason it was rejected.
    public enum BulkItem: Sendable {
        case command(line: Int, RecordCommand)
        case rejected(line: Int, StewardError)

        public var line: Int {
            switch self {
            case .command(let line, _), .rejected(let line, _): line
            }
        }
    }

    public struct BulkRejection: Sendable, Equatable {
        public var line: Int
        public var error: StewardError
    }

    /// A double opt-in grant a bulk recorded as pending, with the token to mail for it.
    public struct BulkPending: Sendable, Equatable {
        public var line: Int
        public var subjectID: UUID
        public var purpose: String
        public var token: String
        public var expiresAt: Date
    }

    public struct BulkOutcome: Sendable, Equatable {
        public var accepted: Int
        public var rejected: [BulkRejection]
        /// Batches the database refused as a whole and that were applied again line by line.
        public var batchesSplit: Int = 0
        /// Accepted lines left pending a double opt-in confirmation (only when tokens were asked for).
        public var pending: [BulkPending] = []
    }

    /// Applies many decisions in atomic batches. Invalid items are reported with their line and never
    /// abort the rest. A batch the database refuses as a whole (a constraint or trigger tripped by one
    /// line) is applied again line by line, each in its own transaction, so only the offending lines
    /// are rejected (`store.rejected`); when the database itself is down, the call fails instead.
    ///
    /// With a `checkpoint`, each batch's transaction also records the line it reached (an import's
    /// job cursor, fenced by its lease: `ConsentImports`), so an import that dies can resume after the
    /// last committed line instead of recording its lines twice.
    ///
    /// A grant for a double opt-in purpose without `confirmedAt` would be left pending: it is rejected
    /// (`consent.confirmation_required`) unless `issueConfirmationTokens` is set, in which case it is
    /// recorded pending and its token returned in `BulkOutcome.pending`, so no pending record is left
    /// that nobody can confirm.
    public func recordBulk(
        _ items: [BulkItem], batchSize: Int = 1_000, checkpoint: ImportCursor? = nil,
        issueConfirmationTokens: Bool = false, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> BulkOutcome {
        try await recordPrepared(
            prepareBulk(items, issueConfirmationTokens: issueConfirmationTokens), batchSize: batchSize,
            checkpoint: checkpoint, progress: progress)
    }

    /// Where an import's batches record their progress: the lines it accepted and rejected before
    /// this bulk (earlier bulks of this run, and the runs before a resume), and how a position is
    /// written in a batch's transaction — so each batch commits with the import's running totals.
    public struct ImportCursor: Sendable {
        public var accepted: Int
        public var rejected: Int
        let write: @Sendable (any StoreTransaction, ImportPosition) async throws -> Void

        public init(
            accepted: Int = 0, rejected: Int = 0,
            write: @escaping @Sendable (any StoreTransaction, ImportPosition) async throws -> Void
        ) {
            self.accepted = accepted
            self.rejected = rejected
            self.write = write
        }

        func position(line: Int) -> ImportPosition {
            ImportPosition(line: line, accepted: accepted, rejected: rejected)
        }
    }

    /// Every line up to `line` is recorded or was rejected: `accepted` and `rejected` of them.
    public struct ImportPosition: Codable, Sendable, Hashable {
        public var line: Int
        public var accepted: Int
        public var rejected: Int
        public init(line: Int, accepted: Int, rejected: Int) {
            self.line = line
            self.accepted = accepted
            self.rejected = rejected
        }
    }

    /// A bulk with its CPU-only work done and no store touched: lines validated, identities
    /// blind-indexed, and each identity's first line given the ids and sealed value of the subject it
    /// would create. An importer prepares the next bulk while the store writes this one, so parsing,
    /// HMAC and AES-GCM run on another core than the writer.
    public struct PreparedBulk: Sendable {
        var valid: [ValidItem]
        var rejected: [BulkRejection]
    }

    /// What `prepareBulk` worked out for one line's identity.
    struct PreparedIdentity: Sendable {
        var blindIndex: Data
        /// On the identity's first line: the subject it creates if the store does not know it yet. Its
        /// sealed value is bound to these ids, so they are used together or not at all.
        var newSubject: (subjectID: UUID, identityID: UUID, ciphertext: Data)?
    }

    public func prepareBulk(_ items: [BulkItem], issueConfirmationTokens: Bool = false) -> PreparedBulk {
        var rejected: [BulkRejection] = []
        var valid: [ValidItem] = []
        valid.reserveCapacity(items.count)
        var seen = Set<BatchCache.IdentityKey>()
        for item in items {
            switch item {
            case .rejected(let line, let error):
                rejected.append(.init(line: line, error: error))
            case .command(let line, let command):
                let purpose: Purpose
                do {
                    purpose = try validate(command)
                } catch {
                    rejected.append(.init(line: line, error: error))
                    continue
                }
                if !issueConfirmationTokens, purpose.doubleOptIn, command.decision == .granted,
                    command.confirmedAt == nil
                {
                    rejected.append(
                        .init(
                            line: line,
                            error: .unprocessable(
                                "consent.confirmation_required",
                                "a grant for a double opt-in purpose needs confirmedAt (when the person confirmed); "
                                    + "or import with --tokens FILE to record it pending and mail each token",
                                field: "confirmedAt")))
                    continue
                }
                var prepared: PreparedIdentity?
                if case .identity(let identity) = command.subject {
                    let index = crypto.indexer.index(identity)
                    prepared = PreparedIdentity(blindIndex: index)
                    if seen.insert(BatchCache.IdentityKey(kind: identity.kind, blindIndex: index)).inserted {
                        let subjectID = runtime.newID()
                        let identityID = runtime.newID()
                        // A seal that fails here is retried (and reported) by the write itself.
                        if let sealed = try? sealIdentity(identity, identityID: identityID, subjectID: subjectID) {
                            prepared?.newSubject = (subjectID, identityID, sealed)
                        }
                    }
                }
                valid.append((line, command, purpose, prepared))
            }
        }
        return PreparedBulk(valid: valid, rejected: rejected)
    }

    /// Writes a prepared bulk in atomic batches: see `recordBulk`.
    public func recordPrepared(
        _ bulk: PreparedBulk, batchSize: Int = 1_000, checkpoint: ImportCursor? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> BulkOutcome {
        var rejected = bulk.rejected
        var pending: [BulkPending] = []
        let valid = bulk.valid
        var accepted = 0
        var split = 0
        var start = 0
        var cursor = checkpoint
        var refusedBefore = 0  // lines refused by `prepareBulk` already counted into `cursor`
        while start < valid.count {
            let batch = Array(valid[start..<min(start + batchSize, valid.count)])
            // Lines `prepareBulk` refused up to this batch's last line are behind its checkpoint too.
            if let last = batch.last?.line {
                while refusedBefore < bulk.rejected.count && bulk.rejected[refusedBefore].line <= last {
                    cursor?.rejected += 1
                    refusedBefore += 1
                }
            }
            let batchRejected: [BulkRejection]
            let batchPending: [BulkPending]
            do {
                (batchRejected, batchPending) = try await recordBatch(batch, checkpoint: cursor)
            } catch is CancellationError {
                throw CancellationError()
            } catch let lost as JobLeaseLost {
                // The import's lease went to another run: nothing of this batch committed; stop.
                throw lost
            } catch {
                split += 1
                (batchRejected, batchPending) = try await recordOneByOne(batch, checkpoint: cursor)
            }
            cursor?.accepted += batch.count - batchRejected.count
            cursor?.rejected += batchRejected.count
            rejected += batchRejected
            pending += batchPending
            accepted += batch.count - batchRejected.count
            start += batch.count
            progress?(start)
        }
        rejected.sort { $0.line < $1.line }
        return BulkOutcome(accepted: accepted, rejected: rejected, batchesSplit: split, pending: pending)
    }

    typealias ValidItem = (line: Int, command: RecordCommand, purpose: Purpose, identity: PreparedIdentity?)

    /// One batch, one transaction.
    func recordBatch(_ batch: [ValidItem], checkpoint: ImportCursor?) async throws -> ([BulkRejection], [BulkPending]) {
        let (failed, pending, tally) = try await writeRetrying { transaction in
            var drafts: [AuditDraft] = []
            var failed: [BulkRejection] = []
            var pending: [BulkPending] = []
            var tally: [EventKind: Int] = [:]
            var cache: BatchCache? = BatchCache()  // per attempt: a retried batch starts afresh
            try await Self.lookUpIdentities(of: batch, in: transaction, into: &cache)
            let lockedAt = cache?.locked ?? [:]
            for item in batch {
                let draftsBefore = drafts.count
                do {
                    let outcome = try await self.apply(
                        item.command, purpose: item.purpose, prepared: item.identity, in: transaction,
                        audit: &drafts, cache: &cache)
                    Self.tally(outcome.allEvents, into: &tally)
                    if let token = Self.pending(outcome, line: item.line) { pending.append(token) }
                } catch let error as StewardError {
                    // A refused line is skipped and the batch goes on only if it wrote nothing. Each
                    // write of `apply` is followed by its audit draft before anything that can raise a
                    // StewardError, so no new draft means no write. Otherwise the batch fails whole and
                    // is applied again one line per transaction, where a refusal undoes its line only.
                    guard drafts.count == draftsBefore else { throw LineWrittenInPart() }
                    failed.append(.init(line: item.line, error: error))
                }
            }
            try await Self.writeOrdinals(of: cache, lockedAt: lockedAt, in: transaction)
            if var checkpoint, let last = batch.last {
                checkpoint.accepted += batch.count - failed.count
                checkpoint.rejected += failed.count
                try await checkpoint.write(transaction, checkpoint.position(line: last.line))
            }
            try await self.audit.append(drafts, in: transaction)
            return (failed, pending, tally)
        }
        countCommitted(tally)
        return (failed, pending)
    }

    static func pending(_ outcome: RecordOutcome, line: Int) -> BulkPending? {
        guard let token = outcome.confirmationToken, let expiresAt = outcome.confirmationExpiresAt else { return nil }
        return BulkPending(
            line: line, subjectID: outcome.subjectID, purpose: outcome.event.purpose, token: token,
            expiresAt: expiresAt)
    }

    /// Writes the ordinal counters a batch kept in its cache: of the subjects it created, and of the
    /// locked ones it advanced past their counter at the batch start (`lockedAt`).
    static func writeOrdinals(
        of cache: BatchCache?, lockedAt: [UUID: Int64], in transaction: any StoreTransaction
    ) async throws {
        for (subject, last) in cache?.created ?? [:] where last > 0 {
            try await transaction.setOrdinal(subjectID: subject, to: last)
        }
        for (subject, last) in cache?.locked ?? [:] where last != lockedAt[subject] {
            try await transaction.setOrdinal(subjectID: subject, to: last)
        }
    }

    /// Asks the store about every identity of the batch at once where that saves round trips (one
    /// query per kind on PostgreSQL instead of one per line), so lines of new subjects read nothing
    /// during the batch, and locks the rows of the subjects that exist, in one order, and reads their
    /// states, so their lines take ordinals and earlier states without a round trip each and
    /// concurrent batches cannot deadlock on them.
    static func lookUpIdentities(
        of batch: [ValidItem], in transaction: any StoreTransaction, into cache: inout BatchCache?
    ) async throws {
        var byKind: [IdentityKind: Set<Data>] = [:]
        for item in batch {
            guard let index = item.identity?.blindIndex, case .identity(let identity) = item.command.subject else {
                continue
            }
            byKind[identity.kind, default: []].insert(index)
        }
        for (kind, indexes) in byKind {
            guard let found = try await transaction.subjectIDs(kind: kind, blindIndexes: Array(indexes)) else {
                return  // the store looks up one by one as cheaply: resolveOrCreate asks as it goes
            }
            for index in indexes {
                let key = BatchCache.IdentityKey(kind: kind, blindIndex: index)
                if let subject = found[index] { cache?.subjects[key] = subject } else { cache?.absent.insert(key) }
            }
        }
        // The existing subjects' rows, locked now and in one order (see `lockSubjects`), and their states.
        guard let subjects = cache?.subjects.values else { return }
        let existing = Array(Set(subjects))
        if let counters = try await transaction.lockSubjects(existing) { cache?.locked = counters }
        if let states = try await transaction.consentStates(subjectIDs: existing) {
            for state in states {
                cache?.states[BatchCache.StateKey(subject: state.subjectID, purpose: state.purpose)] = state
            }
            cache?.statesLoaded.formUnion(existing)
        }
    }

    /// A refused batch, again, one transaction per line. A line the database refuses is reported
    /// without the database's message (it may quote values); if the database does not answer a
    /// ping after such a refusal, it is down rather than refusing a line, and the error propagates.
    func recordOneByOne(_ batch: [ValidItem], checkpoint: ImportCursor?) async throws -> (
        [BulkRejection], [BulkPending]
    ) {
        var failed: [BulkRejection] = []
        var pending: [BulkPending] = []
        // The import's totals as of the last line handled; a line's checkpoint carries them with it.
        var cursor = checkpoint
        var checkedStore = false
        for item in batch {
            do {
                let next = cursor.map { cursor -> ImportCursor in
                    var next = cursor
                    next.accepted += 1
                    return next
                }
                let outcome = try await writeRetrying { transaction in
                    var drafts: [AuditDraft] = []
                    var noCache: BatchCache? = nil
                    let outcome = try await self.apply(
                        item.command, purpose: item.purpose, in: transaction, audit: &drafts, cache: &noCache)
                    try await self.audit.append(drafts, in: transaction)
                    if let next { try await next.write(transaction, next.position(line: item.line)) }
                    return outcome
                }
                cursor = next
                countCommitted(events: outcome.allEvents)
                if let token = Self.pending(outcome, line: item.line) { pending.append(token) }
            } catch let error as StewardError {
                failed.append(.init(line: item.line, error: error))
                cursor?.rejected += 1
            } catch is CancellationError {
                throw CancellationError()
            } catch let lost as JobLeaseLost {
                // The import's lease went to another run: nothing of this batch committed; stop.
                throw lost
            } catch {
                if !checkedStore {
                    try await store.ping()
                    checkedStore = true
                }
                failed.append(
                    .init(
                        line: item.line,
                        error: .unprocessable("store.rejected", "the database refused this line; it was not recorded")))
                cursor?.rejected += 1
            }
        }
        return (failed, pending)
    }

    /// Confirms a pending double opt-in grant with its single-use token.
    public func confirm(token: String, actor: String) async throws -> RecordOutcome {
        let hash = crypto.secrets.digest(token)
        let outcome = try await writeRetrying { transaction in
            guard let record = try await transaction.confirmation(tokenHash: hash) else {
                throw StewardError.notFound("confirmation.unknown_token", "no pending confirmation has this token")
            }
            let now = self.runtime.nowMicros()
            if record.usedAt != nil {
                throw StewardError.conflict("confirmation.already_used", "this token was already used", field: "token")
            }
            if record.expiresAt <= now {
                throw StewardError.conflict("confirmation.expired", "this token has expired", field: "token")
            }
            let purpose = try self.policy.purpose(record.purpose)
            // The grant may have moved with a merge: its confirmation follows it to the surviving subject.
            guard let subjectID = try await transaction.resolveSubject(record.subjectID) else {
                throw StewardError.conflict(
                    "confirmation.superseded", "the subject of this grant no longer exists", field: "token")
            }
            let current = try await transaction.consentState(subjectID: subjectID, purpose: record.purpose)
            guard let current, current.eventID == record.eventID, current.status == .pending else {
                throw StewardError.conflict(
                    "confirmation.superseded", "a later decision replaced the grant this token confirms",
                    field: "token")
            }
            try await transaction.markConfirmationUsed(tokenHash: hash, at: now)
            var drafts: [AuditDraft] = []
            var noCache: BatchCache? = nil
            let (event, state) = try await self.appendEvent(
                subjectID: subjectID, purpose: purpose, decision: .granted, status: .granted,
                method: .doubleOptIn, notice: nil, source: nil, proof: (nil, nil), consentString: nil,
                confirms: record.eventID, actor: actor, now: now, in: transaction, audit: &drafts, cache: &noCache)
            try await self.audit.append(drafts, in: transaction)
            return RecordOutcome(
                subjectID: subjectID, subjectCreated: false, event: event, state: state,
                confirmationToken: nil, confirmationExpiresAt: nil, gpcEvents: [])
        }
        countCommitted(events: outcome.allEvents)
        return outcome
    }

    /// Applies one validated command inside a transaction, collecting its audit drafts.
    func apply(
        _ command: RecordCommand, purpose: Purpose, prepared: PreparedIdentity? = nil,
        in transaction: any StoreTransaction, audit drafts: inout [AuditDraft], cache: inout BatchCache?
    ) async throws -> RecordOutcome {
        let now = runtime.nowMicros()
        let (subjectID, created) = try await resolveOrCreate(
            command.subject, prepared: prepared, actor: command.actor, now: now, in: transaction, audit: &drafts,
            cache: &cache)
        let current = try await currentState(subjectID: subjectID, purpose: purpose.key, in: transaction, cache: cache)
        let (status, needsConfirmation) = ConsentRules.statusAfter(
            decision: command.decision, method: command.method, purpose: purpose, current: current, now: now,
            confirmedAt: command.confirmedAt)
        let proof = (
            command.proofIP.map { crypto.indexer.proofHash($0, kind: "ip") },
            command.proofUserAgent.map { crypto.indexer.proofHash($0, kind: "user_agent") }
        )
        let (event, state) = try await appendEvent(
            subjectID: subjectID, purpose: purpose, decision: command.decision, status: status,
            method: command.method, notice: command.notice, source: command.source, proof: proof,
            consentString: command.consentString, confirms: nil, confirmedAt: command.confirmedAt,
            actor: command.actor, now: now, in: transaction, audit: &drafts, cache: &cache)
        var token: String?
        var tokenExpiry: Date?
        if needsConfirmation {
            let secret = "dc_" + Data(runtime.randomBytes(32)).base64URLString
            let expiry = policy.confirmationTokenLifetime.added(to: now)
            try await transaction.insertConfirmation(
                tokenHash: crypto.secrets.digest(secret),
                ConfirmationRecord(
                    eventID: event.id, subjectID: subjectID, purpose: purpose.key, expiresAt: expiry, usedAt: nil))
            token = secret
            tokenExpiry = expiry
        }
        var gpcEvents: [ConsentEvent] = []
        var finalState = state
        if command.globalPrivacyControl {
            // The browser's opt-out signal wins, over a grant of sale or sharing sent with it too: the
            // grant is recorded as sent, and the opt-out right after it (both in the history, the
            // opt-out in force), so the answer and every later check say not allowed.
            for other in policy.sortedPurposes
            where other.saleOrSharing && (other.key != purpose.key || command.decision == .granted) {
                let otherState = try await currentState(
                    subjectID: subjectID, purpose: other.key, in: transaction, cache: cache)
                guard let decision = ConsentRules.gpcDecision(current: otherState, now: now) else { continue }
                let (gpcEvent, gpcState) = try await appendEvent(
                    subjectID: subjectID, purpose: other, decision: decision,
                    status: decision == .withdrawn ? .withdrawn : .denied, method: .gpc, notice: nil,
                    source: command.source, proof: proof, consentString: nil, confirms: nil, actor: command.actor,
                    now: now, in: transaction, audit: &drafts, cache: &cache)
                gpcEvents.append(gpcEvent)
                if other.key == purpose.key { finalState = gpcState }
            }
        }
        return RecordOutcome(
            subjectID: subjectID, subjectCreated: created, event: event, state: finalState, confirmationToken: token,
            confirmationExpiresAt: tokenExpiry, gpcEvents: gpcEvents)
    }

    func appendEvent(
        subjectID: UUID, purpose: Purpose, decision: ConsentDecision, status: ConsentStatus, method: ConsentMethod,
        notice: PolicySet.NoticeKey?, source: String?, proof: (String?, String?), consentString: String?,
        confirms: UUID?, confirmedAt: Date? = nil, actor: String, now: Date, in transaction: any StoreTransaction,
        audit drafts: inout [AuditDraft], cache: inout BatchCache?
    ) async throws -> (ConsentEvent, ConsentState) {
        let ordinal: Int64
        if let last = cache?.created[subjectID] {
            ordinal = last + 1  // written once per subject when the batch ends
            cache?.created[subjectID] = ordinal
        } else if let last = cache?.locked[subjectID] {
            ordinal = last + 1  // the row is locked since the batch began: written when it ends
            cache?.locked[subjectID] = ordinal
        } else {
            ordinal = try await transaction.nextOrdinal(subjectID: subjectID)
        }
        // A grant confirmed before it came to Steward is valid from its confirmation, not from its import.
        let expiry = ConsentRules.expiry(
            of: purpose, status: status, decidedAt: confirmedAt.map { min($0, now) } ?? now)
        let event = ConsentEvent(
            id: runtime.newID(), subjectID: subjectID, ordinal: ordinal, purpose: purpose.key, decision: decision,
            status: status, method: method, noticeID: notice?.id, noticeVersion: notice?.version, source: source,
            actor: actor, recordedAt: now, expiresAt: expiry, proofIPHash: proof.0, proofUserAgentHash: proof.1,
            consentString: consentString, confirms: confirms, confirmedAt: confirmedAt)
        let state = ConsentState(
            subjectID: subjectID, purpose: purpose.key, status: status, eventID: event.id, decidedAt: now,
            expiresAt: expiry)
        try await transaction.insertConsentEvent(event)
        try await transaction.upsertConsentState(state)
        cache?.states[BatchCache.StateKey(subject: subjectID, purpose: purpose.key)] = state
        var details = [
            "subject": subjectID.lowercasedString, "purpose": purpose.key,
            "decision": decision.rawValue, "status": status.rawValue, "method": method.rawValue,
        ]
        if let confirmedAt { details["confirmedAt"] = Timestamp.iso8601(confirmedAt) }
        drafts.append(
            AuditDraft(
                actor: actor, action: confirms == nil ? "consent.recorded" : "consent.confirmed",
                targetType: "consent_event", targetID: event.id.lowercasedString, details: details))
        return (event, state)
    }

    /// Finds the subject a reference names, creating it (with its sealed identity) on first sight.
    func resolveOrCreate(
        _ reference: SubjectReference, prepared: PreparedIdentity? = nil, actor: String, now: Date,
        in transaction: any StoreTransaction, audit drafts: inout [AuditDraft], cache: inout BatchCache?
    ) async throws -> (UUID, created: Bool) {
        switch reference {
        case .id(let id):
            guard let resolved = try await transaction.resolveSubject(id) else {
                throw StewardError.unprocessable(
                    "subject.unknown", "no subject has this id", field: "subject.subjectId")
            }
            return (resolved, false)
        case .identity(let identity):
            let index = prepared?.blindIndex ?? crypto.indexer.index(identity)
            let key = BatchCache.IdentityKey(kind: identity.kind, blindIndex: index)
            if let known = cache?.subjects[key] { return (known, false) }
            // An identity the batch looked up at its start and found absent is new: no second query.
            if cache?.absent.contains(key) != true,
                let existing = try await transaction.subjectID(kind: identity.kind, blindIndex: index)
            {
                cache?.subjects[key] = existing
                return (existing, false)
            }
            let sealed = prepared?.newSubject
            let subjectID = sealed?.subjectID ?? runtime.newID()
            cache?.subjects[key] = subjectID
            cache?.created[subjectID] = 0
            try await transaction.insertSubject(id: subjectID, createdAt: now)
            let identityID = try await insertIdentity(
                identity, blindIndex: index, subjectID: subjectID, now: now, in: transaction,
                sealed: sealed.map { ($0.identityID, $0.ciphertext) })
            drafts.append(
                AuditDraft(
                    actor: actor, action: "subject.created", targetType: "subject",
                    targetID: subjectID.lowercasedString,
                    details: ["identity": identityID.lowercasedString, "kind": identity.kind.rawValue]))
            return (subjectID, true)
        }
    }

    /// The state in force before this write: from the batch when it wrote or created it, else the store.
    func currentState(
        subjectID: UUID, purpose: String, in transaction: any StoreTransaction, cache: BatchCache?
    ) async throws -> ConsentState? {
        if let cache {
            if let state = cache.states[BatchCache.StateKey(subject: subjectID, purpose: purpose)] { return state }
            // Created in this batch, or every state read at its start: no state is none.
            if cache.created[subjectID] != nil || cache.statesLoaded.contains(subjectID) { return nil }
        }
        return try await transaction.consentState(subjectID: subjectID, purpose: purpose)
    }

    /// Inserts a sealed identity for the subject. `sealed` is an id and value sealed beforehand for
    /// this subject (`prepareBulk`); without it the value is sealed here.
    func insertIdentity(
        _ identity: NormalizedIdentity, blindIndex: Data, subjectID: UUID, now: Date,
        in transaction: any StoreTransaction, sealed: (identityID: UUID, ciphertext: Data)? = nil
    ) async throws -> UUID {
        let identityID = sealed?.identityID ?? runtime.newID()
        let envelope = try sealed?.ciphertext ?? sealIdentity(identity, identityID: identityID, subjectID: subjectID)
        try await transaction.insertIdentity(
            IdentityRecord(
                id: identityID, subjectID: subjectID, kind: identity.kind, blindIndex: blindIndex,
                ciphertext: envelope, createdAt: now))
        return identityID
    }

    /// An identity's value sealed under the field cipher, bound to its row and subject.
    func sealIdentity(_ identity: NormalizedIdentity, identityID: UUID, subjectID: UUID) throws -> Data {
        try crypto.cipher.seal(
            Data(identity.value.utf8),
            context: FieldContext(table: "identities", column: "value", rowID: identityID, subjectID: subjectID))
    }

    // MARK: Reading

    /// The hot path: may this subject's data be used for this purpose now? Never writes.
    public func check(_ subject: SubjectReference, purpose key: String) async throws -> ConsentCheck {
        let purpose = try policy.purpose(key)
        let state: ConsentState?
        switch subject {
        case .identity(let identity):
            state = try await store.consentState(
                kind: identity.kind, blindIndex: crypto.indexer.index(identity), purpose: key)
        case .id(let id):
            state = try await store.read { reader in
                guard let resolved = try await reader.resolveSubject(id) else { return nil }
                return try await reader.consentState(subjectID: resolved, purpose: key)
            }
        }
        return ConsentRules.check(purpose: purpose, state: state, now: runtime.now())
    }

    /// The subject a reference names, or a not-found error.
    public func subjectID(_ reference: SubjectReference) async throws -> UUID {
        let found: UUID? = try await store.read { reader in
            switch reference {
            case .id(let id): return try await reader.resolveSubject(id)
            case .identity(let identity):
                return try await reader.subjectID(kind: identity.kind, blindIndex: self.crypto.indexer.index(identity))
            }
        }
        guard let found else { throw StewardError.notFound("subject.not_found", "no subject matches") }
        return found
    }

    /// Current state per purpose, with the status in force now.
    public func states(subjectID id: UUID) async throws -> (subjectID: UUID, states: [ConsentState], now: Date) {
        let subject = try await subjectID(.id(id))
        let states = try await store.read { try await $0.consentStates(subjectID: subject) }
        return (subject, states, runtime.now())
    }

    /// A page of the subject's ledger, oldest first; `next` is the cursor of the following page.
    public func history(subjectID id: UUID, after: Int64, limit: Int) async throws -> (
        events: [ConsentEvent], next: Int64?
    ) {
        let subject = try await subjectID(.id(id))
        let page = try await store.read {
            try await $0.consentHistory(subjectID: subject, afterOrdinal: after, limit: limit + 1)
        }
        let events = Array(page.prefix(limit))
        return (events, page.count > limit ? events.last?.ordinal : nil)
    }

    /// A page of subject ids whose current state allows the purpose.
    public func audience(purpose key: String, after: UUID?, limit: Int) async throws -> (subjects: [UUID], next: UUID?)
    {
        let purpose = try policy.purpose(key)
        let now = runtime.now()
        let page = try await store.read {
            try await $0.audience(purpose: key, mechanism: purpose.mechanism, now: now, after: after, limit: limit + 1)
        }
        let subjects = Array(page.prefix(limit))
        return (subjects, page.count > limit ? subjects.last : nil)
    }

    /// Runs a write, retrying when a concurrent writer won a uniqueness race (first sight of a subject)
    /// or the database aborted it to resolve a conflict (a deadlock), after a short random pause that
    /// grows with each attempt so the contenders do not meet again.
    func writeRetrying<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws
        -> T
    {
        var attempt = 0
        while true {
            do {
                return try await store.write(body)
            } catch StoreError.uniqueViolation where attempt < 3 {
                attempt += 1
            } catch StoreError.conflict where attempt < 5 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 << attempt))))
            }
        }
    }
}

/// A bulk line raised a refusal after some of its writes: its batch must not commit.
struct LineWrittenInPart: Error {}

/// What one bulk batch has already learned or written, so its later lines need not ask the database
/// again: subjects by identity, subjects created in the batch (no earlier state; their event ordinals
/// are counted here and written once when the batch ends) and the states the batch wrote. Lives for
/// one transaction attempt. Import of three purposes per new subject: two of its three subject
/// lookups, all three state reads and two of three ordinal updates are saved.
struct BatchCache {
    struct IdentityKey: Hashable {
        var kind: IdentityKind
        var blindIndex: Data
    }

    struct StateKey: Hashable {
        var subject: UUID
        var purpose: String
    }

    var subjects: [IdentityKey: UUID] = [:]
    /// Identities the store was asked about at the start of the batch and does not know.
    var absent: Set<IdentityKey> = []
    /// Subjects created in this batch, with the last ordinal given to their events.
    var created: [UUID: Int64] = [:]
    /// Existing subjects whose rows the batch locked at its start (`lockSubjects`), with their ordinal
    /// counters as the batch advances them.
    var locked: [UUID: Int64] = [:]
    var states: [StateKey: ConsentState] = [:]
    /// Existing subjects whose every state was read at the batch start (`consentStates(subjectIDs:)`).
    var statesLoaded: Set<UUID> = []
}
