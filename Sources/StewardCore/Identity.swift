public import Foundation

/// The kinds of identifier a subject is known by. Raw values are stable storage values.
public enum IdentityKind: String, Sendable, CaseIterable, Codable, Hashable {
    case email
    case phone
    case externalId = "external_id"
    case deviceId = "device_id"

    /// The JSON / query parameter name used on the API.
    public var parameterName: String {
        switch self {
        case .email: "email"
        case .phone: "phone"
        case .externalId: "externalId"
        case .deviceId: "deviceId"
        }
    }

    public init?(parameterName: String) {
        guard let kind = Self.allCases.first(where: { $0.parameterName == parameterName }) else { return nil }
        self = kind
    }
}

/// An identifier after normalisation: the only form that is ever hashed or encrypted.
public struct NormalizedIdentity: Sendable, Hashable {
    public let kind: IdentityKind
    public let value: String

    /// Normalises a raw identifier or fails with an error that names the field but never echoes the value.
    ///
    /// - email: trimmed, Unicode NFC, lower-cased; one `@`, non-empty local part, a dotted domain.
    /// - phone: E.164 — `+` (or `00`) then 8 to 15 digits; spaces, dots, dashes and brackets are dropped.
    /// - externalId, deviceId: trimmed, case preserved, 1 to 256 characters.
    public init(kind: IdentityKind, raw: String) throws(StewardError) {
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        self.kind = kind
        switch kind {
        case .email:
            self.value = try Self.normalizeEmail(trimmed)
        case .phone:
            self.value = try Self.normalizePhone(trimmed)
        case .externalId, .deviceId:
            guard !trimmed.isEmpty, trimmed.count <= 256, !trimmed.contains(where: \.isNewline) else {
                throw .invalid(
                    "identity.invalid_\(kind.rawValue)", "must be 1 to 256 characters on one line",
                    field: kind.parameterName)
            }
            self.value = trimmed
        }
    }

    static func normalizeEmail(_ trimmed: String) throws(StewardError) -> String {
        // ASCII is already NFC: lower-case it directly and keep Foundation's NFC for the rest.
        let value =
            trimmed.utf8.allSatisfy({ $0 < 0x80 })
            ? String(decoding: trimmed.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            : trimmed.precomposedStringWithCanonicalMapping.lowercased()
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        let invalid = StewardError.invalid(
            "identity.invalid_email", "is not a valid email address", field: "email")
        guard value.utf8.count <= 254, parts.count == 2 else { throw invalid }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64, domain.contains("."),
            !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains(".."),
            !value.contains(where: { $0.isWhitespace || $0.isNewline })
        else { throw invalid }
        return value
    }

    static func normalizePhone(_ trimmed: String) throws(StewardError) -> String {
        var digits = trimmed.filter { !" .-()\u{00A0}".contains($0) }
        if digits.hasPrefix("00") { digits = "+" + digits.dropFirst(2) }
        guard digits.hasPrefix("+") else {
            throw .invalid(
                "identity.invalid_phone",
                "must be in international E.164 form with a country code, e.g. +14155550123", field: "phone")
        }
        let body = digits.dropFirst()
        guard (8...15).contains(body.count), body.allSatisfy({ $0.isASCII && $0.isNumber }), body.first != "0" else {
            throw .invalid(
                "identity.invalid_phone", "must be + followed by 8 to 15 digits, the first not 0", field: "phone")
        }
        return "+" + body
    }
}
