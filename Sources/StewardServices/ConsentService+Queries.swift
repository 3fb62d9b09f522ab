public import Foundation
public import StewardCore

/// Reading the ledger: the hot-path check, states, history, audiences. None of these writes.
extension ConsentService {
    /// The hot path: may this subject's data be used for this purpose now? Never writes.
    public func check(_ subject: SubjectReference, purpose key: String) async throws -> ConsentCheck {
        let purpose = try policy.purpose(key)
        return ConsentRules.check(
            purpose: purpose, state: try await subjectStates(subject)?.state(key), now: runtime.now())
    }

    /// Every purpose asked for (the policy's, sorted, when none is), for one subject, from one read of
    /// its states: in the order asked, each purpose once.
    public func check(_ subject: SubjectReference, purposes keys: [String]) async throws -> [ConsentCheck] {
        let purposes = try purposes(asked: keys)
        let found = try await subjectStates(subject)
        let now = runtime.now()
        return purposes.map { ConsentRules.check(purpose: $0, state: found?.state($0.key), now: now) }
    }

    /// The purposes a check asks for, each once in the order asked; the policy's, sorted, for none.
    func purposes(asked keys: [String]) throws -> [Purpose] {
        guard !keys.isEmpty else { return policy.sortedPurposes }
        if keys.count == 1 { return [try policy.purpose(keys[0])] }
        var purposes: [Purpose] = []
        var seen: Set<String> = []
        for key in keys where seen.insert(key).inserted { purposes.append(try policy.purpose(key)) }
        return purposes
    }

    /// The check answered from the resident answer set alone, as `check(_:purposes:)` answers it; nil
    /// when the set is off or not serving, does not hold the subject, or a purpose is unknown: the
    /// caller then asks `check(_:purposes:)`, which reads the store or refuses. Never waits.
    public func checkFromMemory(_ subject: SubjectReference, purposes keys: [String]) -> [ConsentCheck]? {
        guard let answers, let purposes = try? purposes(asked: keys) else { return nil }
        let known: SubjectStates??
        switch subject {
        case .identity(let identity):
            known =
                answers.lookup(
                    kind: identity.kind, blindIndex: crypto.indexer.index(identity), countingMisses: false
                ).known
        case .id(let id):
            known = answers.lookup(subject: id, countingMisses: false).map { .some($0) }
        }
        guard let found = known else { return nil }
        let now = runtime.now()
        return purposes.map { ConsentRules.check(purpose: $0, state: found?.state($0.key), now: now) }
    }

    /// The largest batch `check(pairs:)` answers.
    public static let maxCheckPairs = 1_000

    /// Many (subject, purpose) questions in one call, answered in order: identities are looked up
    /// together, one read per kind; subject ids one by one in the same read.
    public func check(pairs: [(subject: SubjectReference, purpose: String)]) async throws -> [ConsentCheck] {
        guard !pairs.isEmpty, pairs.count <= Self.maxCheckPairs else {
            throw StewardError(
                .checkBatchSize, "must hold 1 to \(Self.maxCheckPairs) subject and purpose pairs", field: "checks")
        }
        var purposes: [Purpose] = []
        purposes.reserveCapacity(pairs.count)
        var indexes: [IdentityKind: Set<Data>] = [:]
        var ids: Set<UUID> = []
        var references: [SubjectKey] = []
        references.reserveCapacity(pairs.count)
        for (position, pair) in pairs.enumerated() {
            purposes.append(try policy.purpose(pair.purpose, field: "checks[\(position)].purpose"))
            switch pair.subject {
            case .identity(let identity):
                let index = crypto.indexer.index(identity)
                indexes[identity.kind, default: []].insert(index)
                references.append(.identity(identity.kind, index))
            case .id(let id):
                ids.insert(id)
                references.append(.id(id))
            }
        }
        // What the resident answer set holds is answered from it; the rest is read in one session.
        var cachedIndex: [IdentityKind: [Data: SubjectStates?]] = [:]
        var cachedID: [UUID: SubjectStates] = [:]
        let ticket = answers?.ticket()
        if let answers {
            for (kind, set) in indexes {
                for index in set {
                    guard let known = answers.lookup(kind: kind, blindIndex: index).known else { continue }
                    cachedIndex[kind, default: [:]][index] = known
                    indexes[kind]?.remove(index)
                }
            }
            for id in ids {
                if let found = answers.lookup(subject: id) {
                    cachedID[id] = found
                    ids.remove(id)
                }
            }
        }
        var (byIndex, byID) = try await store.read { [indexes, ids] reader in
            var byIndex: [IdentityKind: [Data: SubjectStates]] = [:]
            for (kind, set) in indexes {
                byIndex[kind] = try await reader.subjectStates(kind: kind, blindIndexes: Array(set))
            }
            var byID: [UUID: SubjectStates] = [:]
            for id in ids { byID[id] = try await Self.subjectStates(id: id, in: reader) }
            return (byIndex, byID)
        }
        if let answers, let ticket {
            for (kind, set) in indexes {
                for index in set {
                    answers.fill(kind: kind, blindIndex: index, found: byIndex[kind]?[index], ticket: ticket)
                }
            }
            for (id, found) in byID where found.subjectID == id { answers.fill(subject: found, ticket: ticket) }
        }
        for (kind, found) in cachedIndex {
            for (index, states) in found { byIndex[kind, default: [:]][index] = states }
        }
        byID.merge(cachedID) { stored, _ in stored }
        let now = runtime.now()
        return zip(references, purposes).map { reference, purpose in
            let found: SubjectStates?
            switch reference {
            case .identity(let kind, let index): found = byIndex[kind]?[index]
            case .id(let id): found = byID[id]
            }
            return ConsentRules.check(purpose: purpose, state: found?.state(purpose.key), now: now)
        }
    }

    /// A subject as the check finds it: by blind index of an identity, or by id.
    enum SubjectKey: Hashable {
        case identity(IdentityKind, Data)
        case id(UUID)
    }

    /// The subject a reference names with every current state, nil when there is none: from the
    /// resident answer set when it has the answer, else from the store (and kept, unless a change
    /// to it was seen while the read was in flight).
    func subjectStates(_ subject: SubjectReference) async throws -> SubjectStates? {
        switch subject {
        case .identity(let identity):
            let index = crypto.indexer.index(identity)
            guard let answers else { return try await store.subjectStates(kind: identity.kind, blindIndex: index) }
            if let known = answers.lookup(kind: identity.kind, blindIndex: index).known { return known }
            let ticket = answers.ticket()
            let found = try await store.subjectStates(kind: identity.kind, blindIndex: index)
            answers.fill(kind: identity.kind, blindIndex: index, found: found, ticket: ticket)
            return found
        case .id(let id):
            if let found = answers?.lookup(subject: id) { return found }
            let ticket = answers?.ticket()
            let found = try await store.read { try await Self.subjectStates(id: id, in: $0) }
            // A merged subject's id is answered through its survivor, never kept under its own.
            if let answers, let ticket, let found, found.subjectID == id {
                answers.fill(subject: found, ticket: ticket)
            }
            return found
        }
    }

    /// A subject by id, through any merges, with every current state; nil when there is none.
    static func subjectStates(id: UUID, in reader: any StoreReader) async throws -> SubjectStates? {
        guard let resolved = try await reader.resolveSubject(id) else { return nil }
        return SubjectStates(subjectID: resolved, states: try await reader.consentStates(subjectID: resolved))
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
