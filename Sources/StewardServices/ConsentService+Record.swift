public import Foundation
public import StewardCore

/// Recording one decision, confirming a double opt-in, and the steps every write shares.
extension ConsentService {
    /// Records one decision: subject found or created, event appended, state updated, GPC opt-outs
    /// applied and audit entries sealed — one transaction.
    public func record(_ command: RecordCommand) async throws -> RecordOutcome {
        try await record(commands: [command], purposes: [try validate(command)])[0]
    }

    /// Records a banner's choices for one subject: each command its own event, with the same proof
    /// and notice, the GPC and double opt-in rules applied per purpose — one transaction. A purpose
    /// or decision refused is named as `decisions`.
    public func record(choices commands: [RecordCommand]) async throws -> [RecordOutcome] {
        var purposes: [Purpose] = []
        for command in commands {
            do {
                purposes.append(try validate(command))
            } catch {
                var error = error
                if error.field == "purpose" || error.field == "decision" { error.field = "decisions" }
                throw error
            }
        }
        return try await record(commands: commands, purposes: purposes)
    }

    private func record(commands: [RecordCommand], purposes: [Purpose]) async throws -> [RecordOutcome] {
        var commands = commands
        // A Global Privacy Control signal is applied once, after every choice is recorded: each sale
        // or sharing purpose is opted out then (a choice granting one is recorded, then opted out).
        let gpc = commands.contains { $0.globalPrivacyControl }
        for index in commands.indices { commands[index].globalPrivacyControl = gpc && index == commands.count - 1 }
        var outcomes = try await store.writeRetrying { [commands] transaction in
            var drafts: [AuditDraft] = []
            // A small batch: a subject this write creates takes its ordinals and earlier (no) states
            // from the cache instead of asking the store.
            var cache: BatchCache? = BatchCache()
            var outcomes: [RecordOutcome] = []
            for (command, purpose) in zip(commands, purposes) {
                outcomes.append(
                    try await self.apply(command, purpose: purpose, in: transaction, audit: &drafts, cache: &cache))
            }
            try await Self.writeOrdinals(of: cache, lockedAt: [:], in: transaction)
            try await self.audit.append(drafts, in: transaction)
            return outcomes
        }
        // Each choice reports the state it is left in, the opt-out included.
        for event in outcomes.last?.gpcEvents ?? [] {
            guard let index = outcomes.firstIndex(where: { $0.event.purpose == event.purpose }) else { continue }
            outcomes[index].state = ConsentState(
                subjectID: event.subjectID, purpose: event.purpose, status: event.status, eventID: event.id,
                decidedAt: event.recordedAt, expiresAt: event.expiresAt)
        }
        countCommitted(events: outcomes.flatMap(\.allEvents))
        return outcomes
    }

    /// Confirms a pending double opt-in grant with its single-use token.
    public func confirm(token: String, actor: String) async throws -> RecordOutcome {
        let hash = crypto.secrets.digest(token)
        let outcome = try await store.writeRetrying { transaction in
            guard let record = try await transaction.confirmation(tokenHash: hash) else {
                throw StewardError(.confirmationUnknownToken, "no pending confirmation has this token")
            }
            let now = self.runtime.nowMicros()
            if record.usedAt != nil {
                throw StewardError(.confirmationAlreadyUsed, "this token was already used", field: "token")
            }
            if record.expiresAt <= now {
                throw StewardError(.confirmationExpired, "this token has expired", field: "token")
            }
            let purpose = try self.policy.purpose(record.purpose)
            // The grant may have moved with a merge: its confirmation follows it to the surviving subject.
            guard let subjectID = try await transaction.resolveSubject(record.subjectID) else {
                throw StewardError(
                    .confirmationSuperseded, "the subject of this grant no longer exists", field: "token")
            }
            let current = try await transaction.consentState(subjectID: subjectID, purpose: record.purpose)
            guard let current, current.eventID == record.eventID, current.status == .pending else {
                throw StewardError(
                    .confirmationSuperseded, "a later decision replaced the grant this token confirms",
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
        // An import does not bring back a person erased on request (ADR 0011 decision 7): a restored
        // CRM's export replayed into Steward would otherwise re-add their consent silently. The
        // person acting again themselves (any other method) is a new relationship, and is recorded.
        let (subjectID, created) = try await resolveOrCreate(
            command.subject, prepared: prepared, actor: command.actor, now: now, in: transaction, audit: &drafts,
            cache: &cache, refusingSuppressed: command.method == .import)
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
        confirms: UUID?, confirmedAt: Date? = nil, actor: String, now: Date, in transaction: any ConsentLedgerWriting,
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
        in transaction: any StoreTransaction, audit drafts: inout [AuditDraft], cache: inout BatchCache?,
        refusingSuppressed: Bool = false
    ) async throws -> (UUID, created: Bool) {
        switch reference {
        case .id(let id):
            guard let resolved = try await transaction.resolveSubject(id) else {
                throw StewardError(.subjectUnknown, "no subject has this id", field: "subject.subjectId")
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
            if refusingSuppressed {
                // Asked with the batch's look-up where the store does that (absent then known), else here.
                let suppressed =
                    cache?.absent.contains(key) == true
                    ? cache?.suppressed.contains(key) == true
                    : !(try await transaction.suppressedIndexes(kind: identity.kind, blindIndexes: [index]).isEmpty)
                if suppressed {
                    throw StewardError(
                        .subjectSuppressed,
                        "this \(identity.kind.rawValue) was erased on the person's request: an import does not bring it back (a record by the person themselves does)",
                        field: "subject")
                }
            }
            let sealed = prepared?.newSubject
            let subjectID = sealed?.subjectID ?? runtime.newID()
            cache?.subjects[key] = subjectID
            cache?.created[subjectID] = 0
            try await transaction.insertSubject(id: subjectID, createdAt: now)
            let identityID = try await vault.insert(
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
        subjectID: UUID, purpose: String, in transaction: any ConsentLedgerReading, cache: BatchCache?
    ) async throws -> ConsentState? {
        if let cache {
            if let state = cache.states[BatchCache.StateKey(subject: subjectID, purpose: purpose)] { return state }
            // Created in this batch, or every state read at its start: no state is none.
            if cache.created[subjectID] != nil || cache.statesLoaded.contains(subjectID) { return nil }
        }
        return try await transaction.consentState(subjectID: subjectID, purpose: purpose)
    }
}
