public import Foundation
public import StewardCore

/// A stored identity: the blind index to find it, the envelope that hides it.
public struct IdentityRecord: Sendable, Hashable {
    public var id: UUID
    public var subjectID: UUID
    public var kind: IdentityKind
    public var blindIndex: Data
    public var ciphertext: Data
    public var createdAt: Date

    public init(id: UUID, subjectID: UUID, kind: IdentityKind, blindIndex: Data, ciphertext: Data, createdAt: Date) {
        self.id = id
        self.subjectID = subjectID
        self.kind = kind
        self.blindIndex = blindIndex
        self.ciphertext = ciphertext
        self.createdAt = createdAt
    }
}

/// Reads of subjects and their identities.
public protocol SubjectReading: Sendable {
    /// The subject an identity belongs to.
    func subjectID(kind: IdentityKind, blindIndex: Data) async throws -> UUID?
    /// The subjects of many identities of one kind, by blind index (absent ones are missing from the
    /// result), or nil when the store answers single look-ups as cheaply (the default). Bulk writes
    /// look up a whole batch up front on a store where a query is a network round trip.
    func subjectIDs(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: UUID]?
    /// Which of these identities of one kind are on the suppression list (erased on request).
    func suppressedIndexes(kind: IdentityKind, blindIndexes: [Data]) async throws -> Set<Data>
    /// The subject an id names, following merges (`nil` when there is no such subject).
    func resolveSubject(_ id: UUID) async throws -> UUID?
    func identities(subjectID: UUID) async throws -> [IdentityRecord]
}

extension SubjectReading {
    public func subjectIDs(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: UUID]? { nil }
}

/// Writes of subjects and identities.
public protocol SubjectWriting: SubjectReading {
    func insertSubject(id: UUID, createdAt: Date) async throws
    func insertIdentity(_ identity: IdentityRecord) async throws
    /// Moves an identity to another subject with its re-sealed envelope.
    func reassignIdentity(id: UUID, to subjectID: UUID, ciphertext: Data) async throws
    func markSubjectMerged(_ source: UUID, into target: UUID, at: Date) async throws
}
