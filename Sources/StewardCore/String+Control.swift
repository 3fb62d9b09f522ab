extension StringProtocol {
    /// Whether the text holds a control character (Unicode category Cc: C0, DEL, C1), NUL included.
    /// Names, sources and consent strings refuse them: PostgreSQL cannot store NUL in text at all,
    /// SQLite's `length()` stops at the first NUL, and no legitimate label or TCF/GPP string has one.
    public var containsControlCharacters: Bool {
        unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}

extension StewardError {
    /// Refuses text holding a control character with `text.control_characters` on `field` (the error
    /// names the field, never the text).
    public static func refuseControlCharacters(in text: some StringProtocol, field: String) throws(StewardError) {
        guard text.containsControlCharacters else { return }
        throw .invalid("text.control_characters", "must not contain control characters", field: field)
    }
}
