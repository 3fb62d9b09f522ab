extension StringProtocol {
    /// Whether the text holds a control character (Unicode category Cc: C0, DEL, C1), NUL included.
    /// Names, sources and consent strings refuse them: PostgreSQL cannot store NUL in text at all,
    /// SQLite's `length()` stops at the first NUL, and no legitimate label or TCF/GPP string has one.
    public var containsControlCharacters: Bool {
        unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}

/// The one validator for text that callers type into Steward — API key names, consent sources and
/// strings, external and device ids, email addresses — so every field refuses the same things the same
/// way, and lengths agree with the databases' CHECK constraints.
///
/// Refused everywhere: control characters (Cc; PostgreSQL cannot store NUL), invisible formatting
/// characters that make one text look like another (zero-width space, bidirectional embeddings,
/// overrides, isolates and marks — "Trojan Source" — the byte-order mark, soft hyphen, invisible
/// operators), and U+FFFD, which stands where the input was not valid UTF-8. The zero-width
/// joiners (U+200C, U+200D) and tag characters are refused in identifiers but allowed in names,
/// where emoji sequences and some scripts need them.
///
/// Lengths count Unicode code points, as SQLite's and PostgreSQL's `length()` do; counting
/// graphemes (Swift's `count`) let a 100-grapheme name of 200 code points past the check and into a
/// CHECK violation (a 500).
public enum FreeText {
    public enum Kind: Sendable {
        /// Shown to people: joiners allowed.
        case name
        /// Matched byte for byte (ids, emails): no invisible character at all.
        case identifier
    }

    /// The code points `kind` refuses.
    public static func refuses(_ scalar: Unicode.Scalar, kind: Kind) -> Bool {
        let value = scalar.value
        switch value {
        case 0x00..<0x20, 0x7F...0x9F: return true  // Cc
        case 0xAD, 0x61C, 0x180E, 0x200B, 0x200E, 0x200F, 0x202A...0x202E, 0x2060...0x2064, 0x2066...0x206F,
            0xFEFF, 0xFFF9...0xFFFB, 0xFFFD, 0xE0001:
            return true
        case 0x200C, 0x200D, 0xE0020...0xE007F: return kind == .identifier
        default: return false
        }
    }

    /// Checks `text` for `field`: at most `maxLength` code points (and at least one unless
    /// `allowsEmpty`), nothing `kind` refuses. Errors name the field, never the text.
    public static func check(
        _ text: some StringProtocol, field: String, maxLength: Int, kind: Kind = .name, allowsEmpty: Bool = false,
        lengthCode: StewardError.Code
    ) throws(StewardError) {
        var count = 0
        for scalar in text.unicodeScalars {
            count += 1
            if refuses(scalar, kind: kind) {
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                    throw StewardError(.textControlCharacters, "must not contain control characters", field: field)
                }
                if scalar.value == 0xFFFD {
                    throw StewardError(
                        .textInvalidUtf8, "is not valid UTF-8 (holds U+FFFD, the replacement character)",
                        field: field)
                }
                throw StewardError(
                    .textInvisibleCharacters,
                    "must not contain invisible formatting characters (zero-width, bidirectional controls)",
                    field: field)
            }
        }
        guard count <= maxLength, allowsEmpty || count > 0 else {
            throw StewardError(
                lengthCode, "must be \(allowsEmpty ? 0 : 1) to \(maxLength) characters (Unicode code points)",
                field: field)
        }
    }
}

extension StewardError {
    /// Refuses text holding a control character with `text.control_characters` on `field` (the error
    /// names the field, never the text).
    public static func refuseControlCharacters(in text: some StringProtocol, field: String) throws(StewardError) {
        guard text.containsControlCharacters else { return }
        throw StewardError(.textControlCharacters, "must not contain control characters", field: field)
    }
}
