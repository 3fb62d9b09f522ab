public import Foundation
public import StewardCore

/// Identities at rest: the blind index that finds a person, the envelope that hides the value, bound
/// to its row and subject (so a ciphertext copied elsewhere fails to open). Shared by the ledger,
/// which creates subjects on first sight, and the subject service, which links and merges them.
public struct IdentityVault: Sendable {
    public let crypto: CryptoSuite
    public let runtime: Runtime

    public init(crypto: CryptoSuite, runtime: Runtime) {
        self.crypto = crypto
        self.runtime = runtime
    }

    /// The blind index of a normalised identity.
    public func index(_ identity: NormalizedIdentity) -> Data { crypto.indexer.index(identity) }

    static func context(identityID: UUID, subjectID: UUID) -> FieldContext {
        FieldContext(table: "identities", column: "value", rowID: identityID, subjectID: subjectID)
    }

    /// A stored identity's value, opened under its own row and subject (refused if it does not open).
    public func open(_ identity: IdentityRecord) throws -> String {
        let plaintext = try crypto.cipher.open(
            identity.ciphertext, context: Self.context(identityID: identity.id, subjectID: identity.subjectID))
        guard let value = String(data: plaintext, encoding: .utf8) else {
            throw StoreError.integrity("an identity's value does not open as text")
        }
        return value
    }

    /// An identity's value sealed under the field cipher, bound to its row and subject.
    public func seal(_ identity: NormalizedIdentity, identityID: UUID, subjectID: UUID) throws -> Data {
        try crypto.cipher.seal(
            Data(identity.value.utf8), context: Self.context(identityID: identityID, subjectID: subjectID))
    }

    /// A stored identity's envelope opened and sealed again for another subject (a merge). A value
    /// that does not open under its own row is refused, never moved on a guess.
    public func reseal(_ identity: IdentityRecord, to subjectID: UUID) throws -> Data {
        let plaintext = try crypto.cipher.open(
            identity.ciphertext, context: Self.context(identityID: identity.id, subjectID: identity.subjectID))
        return try crypto.cipher.seal(plaintext, context: Self.context(identityID: identity.id, subjectID: subjectID))
    }

    /// Inserts a sealed identity for the subject. `sealed` is an id and value sealed beforehand for
    /// this subject (`ConsentService.prepareBulk`); without it the value is sealed here.
    public func insert(
        _ identity: NormalizedIdentity, blindIndex: Data, subjectID: UUID, now: Date,
        in transaction: any SubjectWriting, sealed: (identityID: UUID, ciphertext: Data)? = nil
    ) async throws -> UUID {
        let identityID = sealed?.identityID ?? runtime.newID()
        let envelope = try sealed?.ciphertext ?? seal(identity, identityID: identityID, subjectID: subjectID)
        try await transaction.insertIdentity(
            IdentityRecord(
                id: identityID, subjectID: subjectID, kind: identity.kind, blindIndex: blindIndex,
                ciphertext: envelope, createdAt: now))
        return identityID
    }
}
