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
        var out = CanonicalWriter()
        out.field("steward.audit.v1")
        out.field(sequence)
        out.field(id.lowercasedString)
        out.field(Timestamp.micros(at))
        out.field(draft.actor)
        out.field(draft.action)
        out.field(draft.targetType)
        out.field(draft.targetID)
        out.field(draft.outcome)
        out.field(Int64(draft.details.count))
        for key in draft.details.keys.sorted() {
            out.field(key)
            out.field(draft.details[key]!)
        }
        return Data(out.bytes)
    }
}

/// Length-prefixed fields written straight into one buffer (this runs for every audit entry on every
/// write path): lengths and numbers as decimal digits, without intermediate strings.
struct CanonicalWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(320) }

    mutating func field(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            decimal(Int64(utf8.count))
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func field(_ number: Int64) {
        decimal(Int64(Self.digits(number.magnitude) + (number < 0 ? 1 : 0)))
        bytes.append(UInt8(ascii: ":"))
        decimal(number)
    }

    mutating func decimal(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        let start = bytes.count
        var rest = value.magnitude
        repeat {  // least significant digit first, then reversed
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        bytes[start...].reverse()
    }

    static func digits(_ value: UInt64) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
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
