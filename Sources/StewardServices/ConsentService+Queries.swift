public import Foundation
public import StewardCore

/// Reading the ledger: the hot-path check, states, history, audiences. None of these writes.
extension ConsentService {
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
        guard let found else { throw StewardError(.subjectNotFound, "no subject matches") }
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
}
