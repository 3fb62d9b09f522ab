public import Foundation
public import StewardCore

/// What a database holds, read without writing to it or migrating it: whether Steward's schema is
/// there, whether anything has been written, the key check values recorded so far, and one sealed
/// identity to try a key on when no check value was recorded yet (a database from before them).
public struct StoreInventory: Sendable, Equatable {
    /// Migrations applied (0: no schema yet).
    public var schemaVersion: Int
    /// Any subject, API key or audit entry.
    public var holdsData: Bool
    /// `key.check.<name>` settings by name (`root`, later the audit-signing key and others).
    public var keyChecks: [String: String]
    /// The oldest stored identity, or nil when there is none.
    public var sampleIdentity: IdentityRecord?

    public init(schemaVersion: Int, holdsData: Bool, keyChecks: [String: String], sampleIdentity: IdentityRecord?) {
        self.schemaVersion = schemaVersion
        self.holdsData = holdsData
        self.keyChecks = keyChecks
        self.sampleIdentity = sampleIdentity
    }

    /// A database nothing has been written to: no schema, or a schema with no data and no key bound.
    public var isEmpty: Bool { !holdsData && keyChecks.isEmpty }
}

/// Binds a key to the data written under it, so Steward never serves a database with a key that
/// cannot read it. Without the binding, a start with the wrong root key (a forgotten flag, another
/// working directory, a backup restored on a new host) would find no identity by its blind index and
/// answer "no decision", so an opted-out person's `sale` would read as allowed.
///
/// The database records a *check value* per key — an HMAC of a fixed label under a key derived from
/// it (`RootKey.checkValue`), never the key — when the first data is written. Every start and every
/// command compares it before reading or writing anything else.
public enum KeyBinding {
    /// The settings key of a named key's check value.
    public static func settingKey(_ name: String) -> String { "key.check.\(name)" }

    /// A key as a command found it: its check value, the cipher it seals fields with, and where it
    /// came from, for the error message.
    public struct PresentedKey: Sendable {
        public var name: String
        public var checkValue: String
        public var cipher: any FieldCipher
        /// "the key file /etc/steward/root.key", "STEWARD_ROOT_KEY", …
        public var source: String

        public init(name: String, checkValue: String, cipher: any FieldCipher, source: String) {
            self.name = name
            self.checkValue = checkValue
            self.cipher = cipher
            self.source = source
        }
    }

    /// What to do with a database and a key.
    public enum Decision: Sendable, Equatable {
        /// Nothing is written yet: the key (given or to be generated) will be bound on first write.
        case empty
        /// The recorded check value matches the key.
        case matches
        /// Data from before check values, and the key opens its sampled identity (or there is none to
        /// open): bind the key on the next write.
        case adoptsExisting
    }

    /// Why a command refuses to go on. The message names the database and the key's source, never
    /// key material.
    public struct Refusal: CataloguedError, Sendable, CustomStringConvertible {
        public enum Reason: String, Sendable { case noKey, mismatch }
        public var reason: Reason
        public var description: String
        public var code: StewardError.Code { reason == .noKey ? .rootKeyMissing : .rootKeyMismatch }
    }

    /// Decides whether `key` may be used with the database `inventory` describes. `key` is nil when
    /// none was configured and no development key file exists. `database` names the database in the
    /// error; `lookedFor` says where a key was looked for.
    public static func decide(
        inventory: StoreInventory, key: PresentedKey?, database: String, lookedFor: String
    ) throws -> Decision {
        if inventory.isEmpty { return .empty }
        guard let key else {
            throw Refusal(
                reason: .noKey,
                description: """
                    refusing to start: \(database) holds data written under a root key, and no root key was given \
                    (looked for \(lookedFor)). Pass the key the data was written with (--root-key-file or \
                    STEWARD_ROOT_KEY_FILE); a new key would make every stored identity unreadable and every \
                    person unknown. Nothing was written.
                    """)
        }
        let mismatch = Refusal(
            reason: .mismatch,
            description: """
                refusing to start: the \(key.name) key from \(key.source) does not match the data in \(database) \
                (its key check value differs). Pass the key the data was written with; nothing was written.
                """)
        if let recorded = inventory.keyChecks[key.name] {
            guard constantTimeEqual(recorded, key.checkValue) else { throw mismatch }
            return .matches
        }
        // A database from before check values: the key must open what it sealed.
        if let identity = inventory.sampleIdentity {
            let context = FieldContext(
                table: "identities", column: "value", rowID: identity.id, subjectID: identity.subjectID)
            guard (try? key.cipher.open(identity.ciphertext, context: context)) != nil else { throw mismatch }
        }
        return .adoptsExisting
    }

    /// Records `key`'s check value with an audit entry, in one transaction, if none is recorded yet.
    /// Under the audit-head lock, so two instances binding at once cannot both win; a value recorded
    /// meanwhile by another process that differs is a refusal. Returns whether it wrote.
    @discardableResult
    public static func bind(
        _ key: PresentedKey, store: any StewardStore, audit: AuditLog, actor: String, database: String
    ) async throws -> Bool {
        try await store.write { transaction in
            _ = try await transaction.lockAuditHead()
            if let recorded = try await transaction.setting(settingKey(key.name)) {
                guard constantTimeEqual(recorded, key.checkValue) else {
                    throw Refusal(
                        reason: .mismatch,
                        description:
                            "refusing to start: another process bound a different \(key.name) key to \(database) meanwhile"
                    )
                }
                return false
            }
            try await transaction.setSetting(settingKey(key.name), value: key.checkValue)
            try await audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "key.bound", targetType: "key", targetID: key.name,
                        details: ["checkValue": key.checkValue])
                ], in: transaction)
            return true
        }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
