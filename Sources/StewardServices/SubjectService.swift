public import Foundation
public import StewardCore

/// The single view of each customer: linking identities and merging subjects found to be one person.
public struct SubjectService: Sendable {
    let consent: ConsentService
    let audit: AuditLog

    public init(consent: ConsentService) {
        self.consent = consent
        self.audit = AuditLog(sealer: consent.crypto.sealer, runtime: consent.runtime)
    }

    public enum LinkOutcome: Sendable, Equatable {
        case linked(identityID: UUID)
        case alreadyLinked
    }

    /// Links a new identity to an existing subject. An identity that already belongs to another
    /// subject is a conflict: merge the two subjects instead.
    public func link(_ identity: NormalizedIdentity, to subjectID: UUID, actor: String) async throws -> LinkOutcome {
        let index = consent.crypto.indexer.index(identity)
        return try await consent.writeRetrying { transaction in
            guard let subject = try await transaction.resolveSubject(subjectID) else {
                throw StewardError.notFound("subject.not_found", "no subject has this id")
            }
            if let owner = try await transaction.subjectID(kind: identity.kind, blindIndex: index) {
                if owner == subject { return .alreadyLinked }
                throw StewardError.conflict(
                    "identity.belongs_to_other_subject",
                    "the identity belongs to another subject; merge the two subjects instead",
                    field: identity.kind.parameterName)
            }
            let now = self.consent.runtime.nowMicros()
            let identityID = try await self.consent.insertIdentity(
                identity, blindIndex: index, subjectID: subject, now: now, in: transaction)
            try await self.audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "identity.linked", targetType: "subject",
                        targetID: subject.lowercasedString,
                        details: ["identity": identityID.lowercasedString, "kind": identity.kind.rawValue])
                ], in: transaction)
            return .linked(identityID: identityID)
        }
    }

    public struct MergeOutcome: Sendable, Equatable {
        public var target: UUID
        public var identitiesMoved: Int
        public var eventsMoved: Int
    }

    /// Merges `source` into `target`: identities (re-sealed to their new subject), the consent ledger
    /// (appended after the target's history) and, per purpose, the most recent decision of the two.
    /// `source` then resolves to `target` everywhere.
    public func merge(source: UUID, into target: UUID, actor: String) async throws -> MergeOutcome {
        guard source != target else {
            throw StewardError.unprocessable(
                "subject.merge_self", "cannot merge a subject into itself", field: "source")
        }
        let cipher = consent.crypto.cipher
        return try await consent.writeRetrying { transaction in
            guard let from = try await transaction.resolveSubject(source), from == source else {
                throw StewardError.notFound("subject.not_found", "the source subject does not exist or was merged")
            }
            guard let into = try await transaction.resolveSubject(target), into == target else {
                throw StewardError.notFound("subject.not_found", "the target subject does not exist or was merged")
            }
            let now = self.consent.runtime.nowMicros()
            let identities = try await transaction.identities(subjectID: from)
            for identity in identities {
                let plaintext = try cipher.open(
                    identity.ciphertext,
                    context: FieldContext(table: "identities", column: "value", rowID: identity.id, subjectID: from))
                let resealed = try cipher.seal(
                    plaintext,
                    context: FieldContext(table: "identities", column: "value", rowID: identity.id, subjectID: into))
                try await transaction.reassignIdentity(id: identity.id, to: into, ciphertext: resealed)
            }
            let targetStates = try await transaction.consentStates(subjectID: into)
            let sourceStates = try await transaction.consentStates(subjectID: from)
            let offset = try await transaction.nextOrdinal(subjectID: into) - 1
            let moved = try await transaction.moveConsentEvents(from: from, to: into, ordinalOffset: offset)
            try await transaction.setOrdinal(subjectID: into, to: offset + Int64(moved))
            let byPurpose = Dictionary(targetStates.map { ($0.purpose, $0) }, uniquingKeysWith: { a, _ in a })
            try await transaction.deleteConsentStates(subjectID: from)
            for state in sourceStates {
                if let existing = byPurpose[state.purpose], existing.decidedAt >= state.decidedAt { continue }
                var adopted = state
                adopted.subjectID = into
                try await transaction.upsertConsentState(adopted)
            }
            try await transaction.markSubjectMerged(from, into: into, at: now)
            try await self.audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "subject.merged", targetType: "subject",
                        targetID: into.lowercasedString,
                        details: [
                            "source": from.lowercasedString, "identities": String(identities.count),
                            "events": String(moved),
                        ])
                ], in: transaction)
            return MergeOutcome(target: into, identitiesMoved: identities.count, eventsMoved: moved)
        }
    }
}
