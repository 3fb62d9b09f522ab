import Foundation

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
        let trimmed = Self.trimmed(raw)
        self.kind = kind
        switch kind {
        case .email:
            self.value = try Self.normalizeEmail(trimmed)
        case .phone:
            self.value = try Self.normalizePhone(trimmed)
        case .externalId, .deviceId:
            try FreeText.check(
                trimmed, field: kind.parameterName, maxLength: 256, kind: .identifier,
                lengthCode: kind == .externalId ? .identityInvalidExternalId : .identityInvalidDeviceId)
            self.value = trimmed
        }
    }

    /// Trims white space; ASCII input (the common case) without Foundation's CharacterSet.
    static func trimmed(_ raw: String) -> String {
        let utf8 = raw.utf8
        guard utf8.allSatisfy({ $0 < 0x80 }) else { return raw.trimmingCharacters(in: .whitespacesAndNewlines) }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }), let last = utf8.lastIndex(where: { !isSpace($0) })
        else { return "" }
        if first == utf8.startIndex && last == utf8.index(before: utf8.endIndex) { return raw }
        return String(raw[first...last])
    }

    static func normalizeEmail(_ trimmed: String) throws(StewardError) -> String {
        // ASCII is already NFC: lower-case it directly and keep Foundation's NFC for the rest.
        let value =
            trimmed.utf8.allSatisfy({ $0 < 0x80 })
            ? String(decoding: trimmed.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            : trimmed.precomposedStringWithCanonicalMapping.lowercased()
        // One pass over the bytes: exactly one "@", a 1...64-byte local part, a dotted domain with no
        // empty label at either end or in between, no white space, at most 254 bytes.
        let invalid = StewardError(.identityInvalidEmail, "is not a valid email address", field: "email")
        var at = -1
        var count = 0
        var previous: UInt8 = 0
        var domainHasDot = false
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "@"):
                if at >= 0 { throw invalid }
                at = count
            case UInt8(ascii: "."):
                if at >= 0 {
                    if previous == UInt8(ascii: "@") || previous == UInt8(ascii: ".") { throw invalid }
                    domainHasDot = true
                }
            case 0x00...0x20, 0x7F: throw invalid
            default: break
            }
            previous = byte
            count += 1
        }
        guard count <= 254, at >= 1, at <= 64, domainHasDot, previous != UInt8(ascii: "."),
            previous != UInt8(ascii: "@")
        else { throw invalid }
        if !value.utf8.allSatisfy({ $0 < 0x80 }) {
            // Invisible characters would make two addresses that look alike two people; a replacement
            // character means the input was not UTF-8.
            if value.contains(where: { $0.isWhitespace || $0.isNewline })
                || value.unicodeScalars.contains(where: { FreeText.refuses($0, kind: .identifier) })
            {
                throw invalid
            }
        }
        return value
    }

    static func normalizePhone(_ trimmed: String) throws(StewardError) -> String {
        var digits = trimmed.filter { !" .-()\u{00A0}".contains($0) }
        if digits.hasPrefix("00") { digits = "+" + digits.dropFirst(2) }
        guard digits.hasPrefix("+") else {
            throw StewardError(
                .identityInvalidPhone,
                "must be in international E.164 form with a country code, e.g. +14155550123", field: "phone")
        }
        let body = digits.dropFirst()
        guard (8...15).contains(body.count), body.allSatisfy({ $0.isASCII && $0.isNumber }), body.first != "0" else {
            throw StewardError(
                .identityInvalidPhone, "must be + followed by 8 to 15 digits, the first not 0", field: "phone")
        }
        return "+" + body
    }
}
