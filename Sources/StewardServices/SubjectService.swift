public import Foundation
public import StewardCore

/// The single view of each customer: linking identities and merging subjects found to be one person.
///
/// It works on the subject role of the store, the ledger's public `ConsentLedger.merge` and the
/// identity vault; it knows nothing of how the ledger records decisions.
public struct SubjectService: Sendable {
    let store: any StewardStore
    let vault: IdentityVault
    let audit: AuditLog

    public init(store: any StewardStore, crypto: CryptoSuite, runtime: Runtime) {
        self.store = store
        self.vault = IdentityVault(crypto: crypto, runtime: runtime)
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
    }

    public enum LinkOutcome: Sendable, Equatable {
        case linked(identityID: UUID)
        case alreadyLinked
    }

    /// Links a new identity to an existing subject. An identity that already belongs to another
    /// subject is a conflict: merge the two subjects instead.
    public func link(_ identity: NormalizedIdentity, to subjectID: UUID, actor: String) async throws -> LinkOutcome {
        let index = vault.index(identity)
        return try await store.writeRetrying { transaction in
            guard let subject = try await transaction.resolveSubject(subjectID) else {
                throw StewardError(.subjectNotFound, "no subject has this id")
            }
            if let owner = try await transaction.subjectID(kind: identity.kind, blindIndex: index) {
                if owner == subject { return .alreadyLinked }
                throw StewardError(
                    .identityBelongsToOtherSubject,
                    "the identity belongs to another subject; merge the two subjects instead",
                    field: identity.kind.parameterName)
            }
            let now = self.vault.runtime.nowMicros()
            let identityID = try await self.vault.insert(
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
            throw StewardError(.subjectMergeSelf, "cannot merge a subject into itself", field: "source")
        }
        return try await store.writeRetrying { transaction in
            guard let from = try await transaction.resolveSubject(source), from == source else {
                throw StewardError(.subjectNotFound, "the source subject does not exist or was merged")
            }
            guard let into = try await transaction.resolveSubject(target), into == target else {
                throw StewardError(.subjectNotFound, "the target subject does not exist or was merged")
            }
            let now = self.vault.runtime.nowMicros()
            let identities = try await transaction.identities(subjectID: from)
            for identity in identities {
                try await transaction.reassignIdentity(
                    id: identity.id, to: into, ciphertext: try self.vault.reseal(identity, to: into))
            }
            let moved = try await ConsentLedger.merge(from: from, into: into, in: transaction)
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
