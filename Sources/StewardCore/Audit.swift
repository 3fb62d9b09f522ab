public import Foundation

/// What an audit entry is about, before it is sealed into the chain.
///
/// Holds ids, actions and counts only — never a personal value.
public struct AuditDraft: Sendable, Hashable {
    public var actor: String
    public var action: String
    public var targetType: String
    public var targetID: String
    public var outcome: String
    /// Extra non-personal facts (purpose key, decision, counts), encoded sorted by key.
    public var details: [String: String]

    public init(
        actor: String, action: String, targetType: String, targetID: String, outcome: String = "success",
        details: [String: String] = [:]
    ) {
        self.actor = actor
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.outcome = outcome
        self.details = details
    }
}

/// A sealed entry of the hash chain.
public struct AuditEntry: Sendable, Hashable {
    /// Position in the chain, from 1, assigned under the chain-head lock.
    public var sequence: Int64
    public var id: UUID
    public var at: Date
    public var draft: AuditDraft
    public var previousHash: Data
    public var hash: Data

    public init(sequence: Int64, id: UUID, at: Date, draft: AuditDraft, previousHash: Data, hash: Data) {
        self.sequence = sequence
        self.id = id
        self.at = at
        self.draft = draft
        self.previousHash = previousHash
        self.hash = hash
    }

    /// The genesis "previous hash": 32 zero bytes.
    public static let genesisHash = Data(repeating: 0, count: 32)

    /// The canonical, unambiguous byte encoding that is hashed: every field length-prefixed, in a fixed
    /// order, details sorted by key, time in whole microseconds. Changing this breaks every chain: don't.
    public static func canonicalBytes(sequence: Int64, id: UUID, at: Date, draft: AuditDraft) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func field(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
                out.append(contentsOf: String(bytes.count).utf8)
                out.append(UInt8(ascii: ":"))
                out.append(contentsOf: bytes)
            }
        }
        field("steward.audit.v1")
        field(String(sequence))
        field(id.lowercasedString)
        field(String(Timestamp.micros(at)))
        field(draft.actor)
        field(draft.action)
        field(draft.targetType)
        field(draft.targetID)
        field(draft.outcome)
        field(String(draft.details.count))
        for key in draft.details.keys.sorted() {
            field(key)
            field(draft.details[key]!)
        }
        return Data(out)
    }
}

/// Time as stored: integer microseconds since the Unix epoch, the same on every backend.
public enum Timestamp {
    public static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }
    public static func date(micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}
