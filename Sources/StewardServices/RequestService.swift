public import Foundation
public import StewardCore

/// Data subject requests: intake, the lifecycle's steps and extensions (issue 18 items 1–2). Every
/// change is one transaction with its audit entry; audit entries hold the request's id, type,
/// regime, statuses and dates — never an identity.
public struct RequestService: Sendable {
    public let store: any StewardStore
    public let vault: IdentityVault
    public let runtime: Runtime
    public let regimes: [Regime]
    let audit: AuditLog
    let crypto: CryptoSuite
    /// How approved requests are carried out (nil: they stay approved — the store tests).
    public let execution: RequestExecution?
    /// How long after completion an access or portability request's export package can be
    /// downloaded; its data is purged after (`STEWARD_REQUESTS_PACKAGE_DAYS`, default 7 days).
    public let packageLifetime: TimeInterval
    /// Where opt-outs, limits, objections and restrictions are recorded as denials the consent
    /// check enforces (nil: those requests stay approved — the store tests).
    public let consent: ConsentService?
    /// Where status webhooks are enqueued (nil: none configured).
    public let webhooks: JobQueue?

    public init(
        store: any StewardStore, crypto: CryptoSuite, runtime: Runtime, regimes: [Regime],
        execution: RequestExecution? = nil, packageDays: Int = 7, consent: ConsentService? = nil,
        webhooks: JobQueue? = nil, verificationHours: Int = RequestService.defaultVerificationHours
    ) {
        self.tokenLifetime = TimeInterval(verificationHours) * 3_600
        self.webhooks = webhooks
        self.packageLifetime = TimeInterval(packageDays) * 86_400
        self.consent = consent
        self.crypto = crypto
        self.execution = execution
        self.store = store
        self.vault = IdentityVault(crypto: crypto, runtime: runtime)
        self.runtime = runtime
        self.regimes = regimes
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
    }

    /// The data map requests are planned from (nil: this Steward has none loaded).
    var map: DataMap? { execution?.map ?? consent?.policy.dataMap }

    func regime(_ key: String) throws(StewardError) -> Regime {
        guard let regime = regimes.first(where: { $0.key == key }) else {
            throw StewardError(
                .requestUnknownRegime, "must be one of \(regimes.map(\.key).joined(separator: ", "))", field: "regime")
        }
        return regime
    }

    /// Records a request received now. The identities resolve to the Steward subject they belong
    /// to, or a new subject holding them all; identities of two different subjects are refused
    /// (`identity.belongs_to_other_subject`). An identity Steward does not know yet is not linked to
    /// a known subject here: an unverified request must not attach identities to someone. A request submitted pre-verified (by a service
    /// that verified the person, or an authorized agent) starts `verified`; otherwise `received`.
    public func submit(
        regime key: String, type: RequestType, identities: [NormalizedIdentity], verified: VerificationMethod? = nil,
        agent: String? = nil, corrections: [Correction] = [], submittedAt: Date? = nil,
        hashedIdentities: [HashedIdentity] = [], actor: String
    ) async throws -> DataSubjectRequestRecord {
        try await receive(
            regime: key, type: type, identities: identities, verified: verified, agent: agent,
            corrections: corrections, submittedAt: submittedAt, hashedIdentities: hashedIdentities, actor: actor
        ).record
    }

    /// A request as received, and — when it waits for the person to verify their identity — the
    /// single-use token to deliver to them (shown once; Steward keeps its SHA-256 only).
    public struct Submission: Sendable {
        public var record: DataSubjectRequestRecord
        public var token: VerificationToken?
    }

    public struct VerificationToken: Sendable, Hashable {
        public var token: String
        public var expiresAt: Date
    }

    /// How long a verification token can be used (`STEWARD_REQUESTS_VERIFICATION_HOURS`).
    public let tokenLifetime: TimeInterval
    public static let defaultVerificationHours = 168

    /// `submit`, with the verification token of a request that needs one, issued in the same
    /// transaction. A rectification carries its corrections, checked against the data map and
    /// sealed with the request until it finishes. `submittedAt` is when the person made the request,
    /// where that was before it reached Steward (a form, an authorized agent, a partner's intake):
    /// the controller received it then, so it is the request's `receivedAt` and its clock starts
    /// there (`createdAt` is when Steward recorded it). At most a year ago, not in the future.
    /// `hashedIdentities` (OpenDSR's sha256 format) are sealed with the request and recognised in
    /// the customer's systems by hashing their identity values; alone, they make a subject of their
    /// own that holds no identity.
    public func receive(
        regime key: String, type: RequestType, identities: [NormalizedIdentity], verified: VerificationMethod? = nil,
        agent: String? = nil, corrections: [Correction] = [], submittedAt: Date? = nil,
        hashedIdentities: [HashedIdentity] = [], actor: String
    ) async throws -> Submission {
        let regime = try regime(key)
        guard !identities.isEmpty || !hashedIdentities.isEmpty else {
            throw StewardError(.identityMissing, "give at least one identity of the person", field: "identities")
        }
        if type == .rectification {
            guard let map else {
                throw StewardError(
                    .requestCorrectionUnmapped, "this Steward has no data map to correct", field: "corrections")
            }
            try map.validate(corrections: corrections)
        } else if !corrections.isEmpty {
            throw StewardError(
                .requestCorrectionsMissing, "only a rectification carries corrections", field: "corrections")
        }
        let now = runtime.now()
        if let submittedAt {
            guard submittedAt <= now.addingTimeInterval(300), submittedAt >= now.addingTimeInterval(-366 * 86_400)
            else {
                throw StewardError(
                    .requestSubmittedAtInvalid, "must be within the last year and not in the future",
                    field: "submittedAt")
            }
        }
        let receivedAt = min(submittedAt ?? now, now)
        guard let deadlines = regime.deadlines(for: type, receivedAt: receivedAt) else {
            throw StewardError(
                .requestTypeNotGranted, "\(regime.key) does not grant \(type.rawValue) requests", field: "type")
        }
        let indexed = identities.map { ($0, vault.index($0)) }
        let id = runtime.newID()
        let submitted = try await store.writeRetrying { transaction in
            // Fail closed: identities of two different subjects are refused, not resolved to the
            // first one found (an erasure would miss half the person, or reach someone else).
            var found: Set<UUID> = []
            for (identity, index) in indexed {
                if let known = try await transaction.subjectID(kind: identity.kind, blindIndex: index) {
                    found.insert(known)
                }
            }
            guard found.count <= 1 else {
                throw StewardError(
                    .identityBelongsToOtherSubject,
                    "the identities given belong to \(found.count) different subjects: merge them first",
                    field: "identities")
            }
            var subjectID = found.first
            if subjectID == nil {
                let created = runtime.newID()
                try await transaction.insertSubject(id: created, createdAt: now)
                for (identity, index) in indexed {
                    _ = try await vault.insert(
                        identity, blindIndex: index, subjectID: created, now: now, in: transaction)
                }
                subjectID = created
            }
            var record = DataSubjectRequestRecord(
                id: id, type: type, regime: regime.key, status: verified == nil ? .received : .verified,
                subjectID: subjectID!, receivedAt: receivedAt, deadlines: deadlines, verification: verified,
                agent: agent,
                submittedBy: actor, createdAt: now, updatedAt: now)
            try await transaction.insertDataSubjectRequest(record)
            var details = [
                "type": type.rawValue, "regime": regime.key, "status": record.status.rawValue,
                "due_on": deadlines.dueOn.description, "verification": verified?.rawValue ?? "pending",
                "agent": agent == nil ? "no" : "yes",
            ]
            if submittedAt != nil { details["submitted_at"] = Timestamp.iso8601(receivedAt) }
            let particulars = RequestDetails(corrections: corrections, hashedIdentities: hashedIdentities)
            if !particulars.isEmpty {
                try await transaction.insertRequestDetails(
                    requestID: id, sealed: try seal(particulars, request: record))
            }
            // What is corrected, never to what; which kinds came hashed, never the hashes.
            if !corrections.isEmpty {
                details["corrections"] = corrections.map { $0.category ?? $0.field ?? "" }.joined(separator: ",")
            }
            if !hashedIdentities.isEmpty {
                details["hashed_identities"] = Set(hashedIdentities.map(\.kind.rawValue)).sorted().joined(
                    separator: ",")
            }
            try await log(
                [
                    AuditDraft(
                        actor: actor, action: "request.received", targetType: "request", targetID: id.lowercasedString,
                        details: details)
                ], in: transaction)
            // Approval by rule: a verified request (or one that needs no verification) of a type the
            // regime approves automatically starts at once.
            if let rule = regime.rules[type], rule.automaticApproval,
                let next = record.status.after(.approve, verificationRequired: rule.verificationRequired)
            {
                let previous = record.status
                record.status = next
                if previous == .received { record.verification = .notRequired }
                try await transaction.updateDataSubjectRequest(record)
                try await log(
                    [
                        AuditDraft(
                            actor: "rule:\(regime.key).\(type.rawValue)", action: "request.approve",
                            targetType: "request", targetID: id.lowercasedString,
                            details: ["from": previous.rawValue, "to": next.rawValue])
                    ], in: transaction)
                try await start(&record, in: transaction, actor: actor)
            }
            let token = record.status == .received ? try await issueToken(for: record.id, in: transaction) : nil
            return Submission(record: record, token: token)
        }
        execution?.queue.wake()
        webhooks?.wake()
        return submitted
    }

    func issueToken(for id: UUID, in transaction: any StoreTransaction) async throws -> VerificationToken {
        let token = "dv_" + Data(runtime.randomBytes(32)).base64URLString
        let expiresAt = runtime.now().addingTimeInterval(tokenLifetime)
        try await transaction.insertRequestToken(
            hash: crypto.secrets.digest(token), requestID: id, expiresAt: expiresAt)
        return VerificationToken(token: token, expiresAt: expiresAt)
    }

    /// A new verification token for a request still waiting for one (the person lost the first, or
    /// it expired); earlier unused tokens stop working.
    public func reissueToken(for id: UUID, actor: String) async throws -> VerificationToken {
        try await store.writeRetrying { transaction in
            guard let record = try await transaction.dataSubjectRequest(id: id) else {
                throw StewardError(.requestNotFound, "no request has this id", field: "id")
            }
            guard record.status == .received else {
                throw StewardError(
                    .requestInvalidTransition, "a \(record.status.rawValue) request is not waiting for verification")
            }
            let token = try await issueToken(for: id, in: transaction)
            try await log(
                [
                    AuditDraft(
                        actor: actor, action: "request.token_issued", targetType: "request",
                        targetID: id.lowercasedString, details: ["expires_at": Timestamp.iso8601(token.expiresAt)])
                ], in: transaction)
            return token
        }
    }

    /// The person proved who they are with the token delivered to them: their request is verified
    /// (and approved, where the regime's rule approves automatically). Single-use, until it expires.
    public func verify(token: String, request id: UUID, actor: String) async throws -> DataSubjectRequestRecord {
        let hash = crypto.secrets.digest(token)
        let verified = try await store.writeRetrying { transaction in
            guard let stored = try await transaction.requestToken(hash: hash), stored.requestID == id else {
                throw StewardError(.requestTokenUnknown, "this request waits for no such token", field: "token")
            }
            guard stored.usedAt == nil else {
                throw StewardError(.requestTokenUsed, "this token was used already", field: "token")
            }
            let now = runtime.now()
            guard now < stored.expiresAt else {
                throw StewardError(.requestTokenExpired, "this token has expired: ask for a new one", field: "token")
            }
            try await transaction.markRequestTokenUsed(hash: hash, at: now)
            return try await step(.verify(.token), to: stored.requestID, in: transaction, actor: actor)
        }
        execution?.queue.wake()
        webhooks?.wake()
        return verified
    }

    public func request(_ id: UUID) async throws -> DataSubjectRequestRecord {
        guard let record = try await store.read({ try await $0.dataSubjectRequest(id: id) }) else {
            throw StewardError(.requestNotFound, "no request has this id", field: "id")
        }
        return record
    }

    /// The §7102 metrics of the requests `regime` received in `year` (its calendar), read page by
    /// page from the store.
    public func metrics(regime key: String, year: Int) async throws -> RequestMetrics {
        let regime = try regime(key)
        var filter = RequestFilter(limit: 1_000)
        filter.regime = regime.key
        var requests: [DataSubjectRequestRecord] = []
        while true {
            let page = try await list(filter)
            // Only the year's requests are kept: memory grows with one year, not the regime's history.
            requests += page.filter { CivilDate($0.receivedAt, in: regime.calendar.zone).year == year }
            guard page.count == filter.limit, let last = page.last else { break }
            filter.after = last.id
        }
        return RequestMetrics(requests: requests, regime: regime.key, year: year, zone: regime.calendar.zone)
    }

    public func list(_ filter: RequestFilter) async throws -> [DataSubjectRequestRecord] {
        try await store.read { try await $0.dataSubjectRequests(filter) }
    }

    /// Applies a lifecycle step, or refuses it with the current status (`request.invalid_transition`).
    public func apply(_ event: RequestEvent, to id: UUID, actor: String) async throws -> DataSubjectRequestRecord {
        let applied = try await store.writeRetrying { transaction in
            try await step(event, to: id, in: transaction, actor: actor)
        }
        execution?.queue.wake()
        webhooks?.wake()
        return applied
    }

    /// One lifecycle step in `transaction`, audited; a verification the regime approves by rule
    /// is approved (and started) with it.
    func step(_ event: RequestEvent, to id: UUID, in transaction: any StoreTransaction, actor: String) async throws
        -> DataSubjectRequestRecord
    {
        guard var record = try await transaction.dataSubjectRequest(id: id) else {
            throw StewardError(.requestNotFound, "no request has this id", field: "id")
        }
        let rule = regimes.first { $0.key == record.regime }?.rules[record.type]
        guard let next = record.status.after(event, verificationRequired: rule?.verificationRequired ?? true) else {
            throw StewardError(
                .requestInvalidTransition,
                "a \(record.status.rawValue) request cannot \(event.name.replacingOccurrences(of: "_", with: " "))")
        }
        let now = runtime.now()
        let previous = record.status
        record.status = next
        record.updatedAt = now
        var details = ["from": previous.rawValue, "to": next.rawValue]
        switch event {
        case .verify(let method):
            record.verification = method
            details["verification"] = method.rawValue
        case .approve where previous == .received:
            record.verification = .notRequired
        case .deny(let reason):
            record.denial = reason
            details["reason"] = reason.rawValue
        default: break
        }
        if next.isTerminal {
            record.finishedAt = now
            try await finished(record, in: transaction)
        }
        try await transaction.updateDataSubjectRequest(record)
        try await log(
            [
                AuditDraft(
                    actor: actor, action: "request.\(event.name)", targetType: "request",
                    targetID: id.lowercasedString, details: details)
            ], in: transaction)
        if next == .approved { try await start(&record, in: transaction, actor: actor) }
        if case .verify = event, let rule, rule.automaticApproval, next == .verified {
            return try await step(
                .approve, to: id, in: transaction, actor: "rule:\(record.regime).\(record.type.rawValue)")
        }
        return record
    }

    /// Extends the request's deadline once, with a reason, before it passes (the regime's rule).
    public func extend(_ id: UUID, reason: String, actor: String) async throws -> DataSubjectRequestRecord {
        let regimes = regimes
        return try await store.writeRetrying { transaction in
            guard var record = try await transaction.dataSubjectRequest(id: id) else {
                throw StewardError(.requestNotFound, "no request has this id", field: "id")
            }
            guard !record.status.isTerminal else {
                throw StewardError(.requestInvalidTransition, "a \(record.status.rawValue) request cannot be extended")
            }
            guard let regime = regimes.first(where: { $0.key == record.regime }) else {
                throw StewardError(
                    .requestUnknownRegime, "the request's regime \(record.regime) is no longer in requests.yaml")
            }
            let now = runtime.now()
            record.deadlines = try regime.extend(record.deadlines, type: record.type, reason: reason, now: now)
            record.updatedAt = now
            try await transaction.updateDataSubjectRequest(record)
            try await log(
                [
                    AuditDraft(
                        actor: actor, action: "request.extended", targetType: "request", targetID: id.lowercasedString,
                        details: ["due_on": record.deadlines.dueOn.description])
                ], in: transaction)
            return record
        }
    }
}
