import Foundation
import StewardCore
import StewardServices

// Wire types: camelCase JSON, ISO 8601 times. Requests are decoded leniently into strings and then
// validated with precise, field-naming errors; responses are plain Encodable structs.

struct ConfirmBody: Decodable {
    var token: String?
}

struct LinkIdentityBody: Decodable {
    var email: String?
    var phone: String?
    var externalId: String?
    var deviceId: String?
}

struct MergeBody: Decodable {
    var source: String?
}

struct CreateKeyBody: Decodable {
    var name: String?
    var role: String?
}

struct EventDTO: Encodable {
    struct NoticeRef: Encodable {
        var id: String
        var version: String
    }
    struct Proof: Encodable {
        var ipHash: String?
        var userAgentHash: String?
    }
    var id: String
    var subjectId: String
    var ordinal: Int64
    var purpose: String
    var decision: String
    var status: String
    var method: String
    var notice: NoticeRef?
    var source: String?
    var actor: String
    var recordedAt: Date
    var expiresAt: Date?
    var proof: Proof?
    var consentString: String?
    var confirms: String?
    var confirmedAt: Date?

    init(_ event: ConsentEvent) {
        id = event.id.lowercasedString
        subjectId = event.subjectID.lowercasedString
        ordinal = event.ordinal
        purpose = event.purpose
        decision = event.decision.rawValue
        status = event.status.rawValue
        method = event.method.rawValue
        if let noticeID = event.noticeID, let version = event.noticeVersion {
            notice = NoticeRef(id: noticeID, version: version)
        }
        source = event.source
        actor = event.actor
        recordedAt = event.recordedAt
        expiresAt = event.expiresAt
        if event.proofIPHash != nil || event.proofUserAgentHash != nil {
            proof = Proof(ipHash: event.proofIPHash, userAgentHash: event.proofUserAgentHash)
        }
        consentString = event.consentString
        confirms = event.confirms?.lowercasedString
        confirmedAt = event.confirmedAt
    }
}

struct StateDTO: Encodable {
    var subjectId: String
    var purpose: String
    var status: String
    var allowed: Bool
    var recordId: String
    var decidedAt: Date
    var expiresAt: Date?

    init(_ state: ConsentState, purpose: Purpose?, now: Date) {
        subjectId = state.subjectID.lowercasedString
        self.purpose = state.purpose
        let check = purpose.map { ConsentRules.check(purpose: $0, state: state, now: now) }
        status = state.effectiveStatus(at: now).rawValue
        allowed = check?.allowed ?? false
        recordId = state.eventID.lowercasedString
        decidedAt = state.decidedAt
        expiresAt = state.expiresAt
    }
}

struct RecordResponse: Encodable {
    struct Confirmation: Encodable {
        var token: String
        var expiresAt: Date
    }
    var subjectId: String
    var subjectCreated: Bool
    var event: EventDTO
    var state: StateDTO
    var confirmation: Confirmation?
    var gpcOptOuts: [EventDTO]
}

struct RecordChoicesResponse: Encodable {
    struct Choice: Encodable {
        var event: EventDTO
        var state: StateDTO
        var confirmation: RecordResponse.Confirmation?
    }
    var subjectId: String
    var subjectCreated: Bool
    var decisions: [Choice]
    var gpcOptOuts: [EventDTO]
}

struct BulkResponse: Encodable {
    struct Rejection: Encodable {
        var line: Int
        var code: String
        var field: String?
        var detail: String
    }
    var accepted: Int
    /// The first rejections, in line order (`?rejections=N`).
    var rejected: [Rejection]
    var rejectedCount: Int
    var rejectedByCode: [String: Int]
    /// Rejections counted but not listed.
    var rejectionsOmitted: Int
}

struct KeyDTO: Encodable {
    var id: String
    var name: String
    var role: String
    var prefix: String
    var createdAt: Date
    var revokedAt: Date?

    init(_ key: APIKeyRecord) {
        id = key.id.lowercasedString
        name = key.name
        role = key.role.rawValue
        prefix = key.prefix
        createdAt = key.createdAt
        revokedAt = key.revokedAt
    }
}

struct AuditEntryDTO: Encodable {
    var sequence: Int64
    var id: String
    var at: Date
    var actor: String
    var action: String
    var targetType: String
    var targetId: String
    var outcome: String
    var details: [String: String]
    var previousHash: String
    var hash: String

    init(_ entry: AuditEntry) {
        sequence = entry.sequence
        id = entry.id.lowercasedString
        at = entry.at
        actor = entry.draft.actor
        action = entry.draft.action
        targetType = entry.draft.targetType
        targetId = entry.draft.targetID
        outcome = entry.draft.outcome
        details = entry.draft.details
        previousHash = entry.previousHash.hexString
        hash = entry.hash.hexString
    }
}

struct PurposeDTO: Encodable {
    var key: String
    var description: String
    var legalBasis: String
    var mechanism: String
    var doubleOptIn: Bool
    var validity: String?
    var saleOrSharing: Bool
    var jurisdictions: [String]

    init(_ purpose: Purpose) {
        key = purpose.key
        description = purpose.description
        legalBasis = purpose.legalBasis.rawValue
        mechanism = purpose.mechanism.rawValue
        doubleOptIn = purpose.doubleOptIn
        validity = purpose.validity?.description
        saleOrSharing = purpose.saleOrSharing
        jurisdictions = purpose.jurisdictions
    }
}

struct NoticeDTO: Encodable {
    var id: String
    var version: String
    var language: String
    var url: String
    var sha256: String

    init(_ notice: Notice) {
        id = notice.id
        version = notice.version
        language = notice.language
        url = notice.url
        sha256 = notice.sha256
    }
}

// MARK: Hand-written JSON for the record path

/// A JSON object written key by key, in the order given (callers give keys sorted, as JSONEncoder's
/// `.sortedKeys` does); nil values are left out, as synthesized `Encodable` does.
struct JSONObjectWriter {
    private(set) var text = "{"
    private var empty = true

    private mutating func key(_ name: String) {
        text += empty ? "\"" : ",\""
        text += name
        text += "\":"
        empty = false
    }

    mutating func string(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        text += AuditDetailsCoding.quoted(value)
    }

    mutating func date(_ name: String, _ value: Date?) {
        guard let value else { return }
        key(name)
        text += "\"" + Timestamp.iso8601(value) + "\""
    }

    mutating func int(_ name: String, _ value: Int64) {
        key(name)
        text += String(value)
    }

    mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    /// An already-written JSON value (object or array).
    mutating func raw(_ name: String, _ json: String?) {
        guard let json else { return }
        key(name)
        text += json
    }

    func finished() -> String { text + "}" }
}

extension EventDTO {
    var jsonText: String {
        var object = JSONObjectWriter()
        object.string("actor", actor)
        object.date("confirmedAt", confirmedAt)
        object.string("confirms", confirms)
        object.string("consentString", consentString)
        object.string("decision", decision)
        object.date("expiresAt", expiresAt)
        object.string("id", id)
        object.string("method", method)
        object.raw(
            "notice",
            notice.map { notice in
                var inner = JSONObjectWriter()
                inner.string("id", notice.id)
                inner.string("version", notice.version)
                return inner.finished()
            })
        object.int("ordinal", ordinal)
        object.raw(
            "proof",
            proof.map { proof in
                var inner = JSONObjectWriter()
                inner.string("ipHash", proof.ipHash)
                inner.string("userAgentHash", proof.userAgentHash)
                return inner.finished()
            })
        object.string("purpose", purpose)
        object.date("recordedAt", recordedAt)
        object.string("source", source)
        object.string("status", status)
        object.string("subjectId", subjectId)
        return object.finished()
    }
}

extension StateDTO {
    var jsonText: String {
        var object = JSONObjectWriter()
        object.bool("allowed", allowed)
        object.date("decidedAt", decidedAt)
        object.date("expiresAt", expiresAt)
        object.string("purpose", purpose)
        object.string("recordId", recordId)
        object.string("status", status)
        object.string("subjectId", subjectId)
        return object.finished()
    }
}

extension RecordResponse {
    /// The body `JSONEncoder` would write for this value (sorted keys, times as `Timestamp.iso8601`),
    /// without its reflection: encoding was 9% of the server's CPU on the durable-record benchmark.
    /// A test compares the two for every shape of outcome.
    var jsonText: String {
        var object = JSONObjectWriter()
        object.raw("confirmation", confirmation?.jsonText)
        object.raw("event", event.jsonText)
        object.raw("gpcOptOuts", "[" + gpcOptOuts.map(\.jsonText).joined(separator: ",") + "]")
        object.raw("state", state.jsonText)
        object.bool("subjectCreated", subjectCreated)
        object.string("subjectId", subjectId)
        return object.finished()
    }
}

extension RecordResponse.Confirmation {
    var jsonText: String {
        var object = JSONObjectWriter()
        object.date("expiresAt", expiresAt)
        object.string("token", token)
        return object.finished()
    }
}

extension RecordChoicesResponse {
    /// As `RecordResponse.jsonText`: the body `JSONEncoder` would write, without its reflection.
    var jsonText: String {
        var object = JSONObjectWriter()
        let choices = decisions.map { choice in
            var inner = JSONObjectWriter()
            inner.raw("confirmation", choice.confirmation?.jsonText)
            inner.raw("event", choice.event.jsonText)
            inner.raw("state", choice.state.jsonText)
            return inner.finished()
        }
        object.raw("decisions", "[" + choices.joined(separator: ",") + "]")
        object.raw("gpcOptOuts", "[" + gpcOptOuts.map(\.jsonText).joined(separator: ",") + "]")
        object.bool("subjectCreated", subjectCreated)
        object.string("subjectId", subjectId)
        return object.finished()
    }
}

/// A JSON value held as text in the store (a job's payload, cursor, result), shown as JSON.
enum JSONValue: Codable, Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(text: String) {
        self = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

struct JobDTO: Encodable {
    struct Progress: Encodable {
        var done: Int64
        var total: Int64?
    }
    struct Lease: Encodable {
        var owner: String
        var expiresAt: Date
    }
    var id: String
    var kind: String
    var state: String
    var idempotencyKey: String?
    var payload: JSONValue
    var cursor: JSONValue?
    var progress: Progress
    var result: JSONValue?
    var lastError: String?
    var attempts: Int
    var maxAttempts: Int
    var runAfter: Date
    var lease: Lease?
    var cancelRequested: Bool
    var createdBy: String
    var createdAt: Date
    var startedAt: Date?
    var finishedAt: Date?

    init(_ job: JobRecord) {
        id = job.id.lowercasedString
        kind = job.kind
        state = job.state.rawValue
        idempotencyKey = job.idempotencyKey
        payload = JSONValue(text: job.payload)
        cursor = job.cursor.map(JSONValue.init(text:))
        progress = Progress(done: job.progressDone, total: job.progressTotal)
        result = job.result.map(JSONValue.init(text:))
        lastError = job.lastError
        attempts = job.attempts
        maxAttempts = job.maxAttempts
        runAfter = job.runAfter
        if let owner = job.leaseOwner, let expires = job.leaseExpiresAt {
            lease = Lease(owner: owner, expiresAt: expires)
        }
        cancelRequested = job.cancelRequested
        createdBy = job.createdBy
        createdAt = job.createdAt
        startedAt = job.startedAt
        finishedAt = job.finishedAt
    }
}

struct JobPage: Encodable {
    var jobs: [JobDTO]
    var nextCursor: String?
    /// Every job of the listed kind (or all kinds) by state, whatever the page holds.
    var counts: [String: Int]
}
