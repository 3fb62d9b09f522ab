public import Foundation
import NIOCore
public import StewardCore
public import StewardServices

// The wire form of a consent record, shared by the HTTP edge and the command line: camelCase JSON,
// ISO 8601 times. Requests are decoded leniently into strings and then validated with precise,
// field-naming errors.

public struct SubjectBody: Decodable, Sendable {
    var email: String?
    var phone: String?
    var externalId: String?
    var deviceId: String?
    var subjectId: String?

    /// Exactly one identifier must be given.
    public func reference(field: String = "subject") throws(StewardError) -> SubjectReference {
        var given: [(String, String)] = []
        if let email { given.append(("email", email)) }
        if let phone { given.append(("phone", phone)) }
        if let externalId { given.append(("externalId", externalId)) }
        if let deviceId { given.append(("deviceId", deviceId)) }
        if let subjectId { given.append(("subjectId", subjectId)) }
        guard given.count == 1, let (name, value) = given.first else {
            throw StewardError(
                given.isEmpty ? .subjectMissing : .subjectAmbiguous,
                "give exactly one of email, phone, externalId, deviceId or subjectId", field: field)
        }
        return try parseReference(name: name, value: value, field: "\(field).\(name)")
    }
}

public func parseReference(name: String, value: String, field: String) throws(StewardError) -> SubjectReference {
    if name == "subjectId" {
        guard let id = UUID(uuidString: value) else {
            throw StewardError(.subjectInvalidId, "is not a subject id (UUID)", field: field)
        }
        return .id(id)
    }
    guard let kind = IdentityKind(parameterName: name) else {
        throw StewardError(.subjectUnknownIdentifier, "is not an identifier kind", field: field)
    }
    do {
        return .identity(try NormalizedIdentity(kind: kind, raw: value))
    } catch {
        var error = error
        error.field = field
        throw error
    }
}

public struct NoticeBody: Decodable, Sendable {
    var id: String
    var version: String
}

public struct ProofBody: Decodable, Sendable {
    var ip: String?
    var userAgent: String?
}

public struct RecordConsentBody: Decodable, Sendable {
    var subject: SubjectBody?
    var purpose: String?
    var decision: String?
    var method: String?
    var notice: NoticeBody?
    var source: String?
    var proof: ProofBody?
    var consentString: String?
    /// RFC 3339 time (or a date) of an earlier double opt-in confirmation, for imported grants.
    var confirmedAt: String?
    /// A banner's choices: purpose key → decision, in place of `purpose` and `decision`.
    var decisions: [String: String]?

    /// The most choices one record carries.
    public static let maxDecisions = 50

    /// Whether the record carries several choices (`decisions`) rather than one decision.
    public var isChoices: Bool { decisions != nil }

    /// The commands of a record: one from `purpose` and `decision`, or one per entry of `decisions`,
    /// in purpose key order, each with the record's subject, notice, method and proof.
    public func commands(actor: String, defaultMethod: ConsentMethod, gpc: Bool) throws(StewardError)
        -> [ConsentService.RecordCommand]
    {
        guard let decisions else { return [try command(actor: actor, defaultMethod: defaultMethod, gpc: gpc)] }
        guard purpose == nil, decision == nil else {
            throw StewardError(
                .consentDecisionsInvalid, "give purpose and decision, or decisions, not both", field: "decisions")
        }
        guard (1...Self.maxDecisions).contains(decisions.count) else {
            throw StewardError(
                .consentDecisionsInvalid, "must name 1 to \(Self.maxDecisions) purposes", field: "decisions")
        }
        var single = self
        single.decisions = nil
        var commands: [ConsentService.RecordCommand] = []
        for key in decisions.keys.sorted() {
            single.purpose = key
            single.decision = decisions[key]
            do {
                commands.append(try single.command(actor: actor, defaultMethod: defaultMethod, gpc: gpc))
            } catch {
                // An entry's key is the client's text: the error names the object, not the key.
                var error = error
                if error.field == "purpose" || error.field == "decision" { error.field = "decisions" }
                throw error
            }
        }
        return commands
    }

    public func command(actor: String, defaultMethod: ConsentMethod, gpc: Bool) throws(StewardError)
        -> ConsentService.RecordCommand
    {
        if decisions != nil {
            throw StewardError(
                .consentDecisionsInvalid, "a single record (or a bulk line) gives purpose and decision",
                field: "decisions")
        }
        guard let subject else { throw StewardError(.subjectMissing, "is required", field: "subject") }
        let reference = try subject.reference()
        guard let purpose, !purpose.isEmpty else {
            throw StewardError(.purposeMissing, "is required", field: "purpose")
        }
        guard let decisionText = decision else {
            throw StewardError(.decisionMissing, "is required", field: "decision")
        }
        guard let decision = ConsentDecision(rawValue: decisionText) else {
            throw StewardError(.decisionInvalid, "must be one of granted, denied, withdrawn", field: "decision")
        }
        let method: ConsentMethod
        if let text = self.method {
            guard let parsed = ConsentMethod(rawValue: text) else {
                throw StewardError(
                    .methodInvalid,
                    "must be one of \(ConsentMethod.allCases.map(\.rawValue).joined(separator: ", "))", field: "method")
            }
            method = parsed
        } else {
            method = defaultMethod
        }
        if let ip = proof?.ip {
            // An address, nothing else: its keyed hash is the proof, so anything else is no proof at all.
            guard ip.utf8.count <= 45, (try? SocketAddress(ipAddress: ip, port: 0)) != nil else {
                throw StewardError(.proofInvalidIp, "must be an IPv4 or IPv6 address", field: "proof.ip")
            }
        }
        if let userAgent = proof?.userAgent {
            try FreeText.check(
                userAgent, field: "proof.userAgent", maxLength: 1_024, lengthCode: .proofUserAgentTooLong)
        }
        var confirmed: Date?
        if let text = confirmedAt {
            guard let date = Self.parseTime(text) else {
                throw StewardError(
                    .consentConfirmedAtInvalid,
                    "must be an RFC 3339 time such as 2024-03-01T09:30:00Z, or a date such as 2024-03-01",
                    field: "confirmedAt")
            }
            confirmed = date
        }
        return ConsentService.RecordCommand(
            subject: reference, purpose: purpose, decision: decision, method: method,
            notice: notice.map { .init(id: $0.id, version: $0.version) }, source: source, proofIP: proof?.ip,
            proofUserAgent: proof?.userAgent, consentString: consentString, globalPrivacyControl: gpc, actor: actor,
            confirmedAt: confirmed)
    }

    /// An RFC 3339 time (with or without fractional seconds) or a calendar date (midnight UTC),
    /// truncated to the microseconds every backend stores.
    public static func parseTime(_ text: String) -> Date? {
        guard text.count <= 40 else { return nil }
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = withFraction.date(from: text) ?? plain.date(from: text) ?? day.date(from: text) else {
            return nil
        }
        return Timestamp.date(micros: Timestamp.micros(date))
    }
}

public func decodingProblem(_ error: DecodingError) -> StewardError {
    func path(_ context: DecodingError.Context, _ extra: (any CodingKey)? = nil) -> String? {
        let keys = context.codingPath + (extra.map { [$0] } ?? [])
        let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let trimmed = text.hasPrefix(".") ? String(text.dropFirst()) : text
        return trimmed.isEmpty ? nil : trimmed
    }
    switch error {
    case .keyNotFound(let key, let context):
        return StewardError(.requestMissingField, "is required", field: path(context, key))
    case .typeMismatch(let type, let context):
        return StewardError(.requestWrongType, "has the wrong type (expected \(type))", field: path(context))
    case .valueNotFound(let type, let context):
        return StewardError(.requestMissingValue, "must not be null (expected \(type))", field: path(context))
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty {
            return StewardError(.requestMalformedJson, "the body is not valid JSON")
        }
        return StewardError(.requestInvalidValue, "is not a valid value", field: path(context))
    @unknown default:
        return StewardError(.requestMalformedJson, "the body could not be decoded")
    }
}
