extension StewardError.Code {
    /// The catalogue as Markdown: `steward errors` prints it and `Docs/Errors.md` is its output.
    public static func catalogueMarkdown() -> String {
        var text = """
            # Error codes

            Every error Steward answers or reports carries one of these codes. They are declared once, in
            `Sources/StewardCore/ErrorCatalogue.swift` (`StewardError.Code`, a closed set: no code can be made
            anywhere else), and never change once shipped, so clients may branch on them. An HTTP error is an
            RFC 9457 `application/problem+json` document:

            ```json
            {"code": "identity.invalid_email", "detail": "is not a valid email address", "field": "subject.email",
             "status": 400, "title": "Bad Request", "type": "https://steward.dev/problems/identity.invalid_email"}
            ```

            `field` names the offending input by its JSON path (or query parameter); `detail` is a sentence for
            people. Neither ever holds a personal value: an invalid email is "not a valid email address", never
            the address. Bulk answers and import reports list rejected lines by the same codes. Command-line
            errors end with their code in brackets (`Error: refusing to start: … [root_key.mismatch]`).

            This file is the output of `steward errors`; a test keeps the two equal.

            """
        var group = ""
        for code in all {
            let prefix = String(code.rawValue.split(separator: ".").first ?? "")
            if prefix != group {
                group = prefix
                text += "\n## `\(prefix)`\n\n| Code | Status | Meaning |\n|---|---|---|\n"
            }
            let status = code.kind.httpStatus.map(String.init) ?? "—"
            text += "| `\(code.rawValue)` | \(status) | \(code.summary) |\n"
        }
        return text
    }
}
