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

    public init(
        store: any StewardStore, crypto: CryptoSuite, runtime: Runtime, regimes: [Regime],
        execution: RequestExecution? = nil, packageDays: Int = 7
    ) {
        self.packageLifetime = TimeInterval(packageDays) * 86_400
        self.crypto = crypto
        self.execution = execution
        self.store = store
        self.vault = IdentityVault(crypto: crypto, runtime: runtime)
        self.runtime = runtime
        self.regimes = regimes
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
    }

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
        agent: String? = nil, actor: String
    ) async throws -> DataSubjectRequestRecord {
        let regime = try regime(key)
        guard !identities.isEmpty else {
            throw StewardError(.identityMissing, "give at least one identity of the person", field: "identities")
        }
        let now = runtime.now()
        guard let deadlines = regime.deadlines(for: type, receivedAt: now) else {
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
                subjectID: subjectID!, receivedAt: now, deadlines: deadlines, verification: verified, agent: agent,
                submittedBy: actor, createdAt: now, updatedAt: now)
            try await transaction.insertDataSubjectRequest(record)
            _ = try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "request.received", targetType: "request", targetID: id.lowercasedString,
                        details: [
                            "type": type.rawValue, "regime": regime.key, "status": record.status.rawValue,
                            "due_on": deadlines.dueOn.description, "verification": verified?.rawValue ?? "pending",
                            "agent": agent == nil ? "no" : "yes",
                        ])
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
                _ = try await audit.append(
                    [
                        AuditDraft(
                            actor: "rule:\(regime.key).\(type.rawValue)", action: "request.approve",
                            targetType: "request", targetID: id.lowercasedString,
                            details: ["from": previous.rawValue, "to": next.rawValue])
                    ], in: transaction)
                try await start(&record, in: transaction, actor: actor)
            }
            return record
        }
        execution?.queue.wake()
        return submitted
    }

    public func request(_ id: UUID) async throws -> DataSubjectRequestRecord {
        guard let record = try await store.read({ try await $0.dataSubjectRequest(id: id) }) else {
            throw StewardError(.requestNotFound, "no request has this id", field: "id")
        }
        return record
    }

    public func list(_ filter: RequestFilter) async throws -> [DataSubjectRequestRecord] {
        try await store.read { try await $0.dataSubjectRequests(filter) }
    }

    /// Applies a lifecycle step, or refuses it with the current status (`request.invalid_transition`).
    public func apply(_ event: RequestEvent, to id: UUID, actor: String) async throws -> DataSubjectRequestRecord {
        let regimes = regimes
        let applied = try await store.writeRetrying { transaction in
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
            if next.isTerminal { record.finishedAt = now }
            try await transaction.updateDataSubjectRequest(record)
            _ = try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "request.\(event.name)", targetType: "request",
                        targetID: id.lowercasedString, details: details)
                ], in: transaction)
            if next == .approved { try await start(&record, in: transaction, actor: actor) }
            return record
        }
        execution?.queue.wake()
        return applied
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
            _ = try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "request.extended", targetType: "request", targetID: id.lowercasedString,
                        details: ["due_on": record.deadlines.dueOn.description])
                ], in: transaction)
            return record
        }
    }
}
