import Foundation
import StewardCore
import Testing

/// The closed error catalogue (issue 16 item 7): every code declared once, well formed, with the
/// status of its kind; Docs/Errors.md is the catalogue's own rendering.
@Suite struct ErrorCatalogue {
    @Test func everyCodeIsDeclaredOnceAndWellFormed() throws {
        let raw = StewardError.Code.all.map(\.rawValue)
        #expect(Set(raw).count == raw.count, "a code is declared twice")
        let form = try Regex("^[a-z][a-z_]*(\\.[a-z][a-z0-9_]*)*$")
        for code in StewardError.Code.all {
            #expect(code.rawValue.wholeMatch(of: form) != nil, "\(code.rawValue)")
            #expect(!code.summary.isEmpty && code.summary.hasSuffix("."), "\(code.rawValue)")
            #expect(StewardError.Code(rawValue: code.rawValue) == code)
        }
        #expect(StewardError.Code(rawValue: "no.such_code") == nil)
    }

    @Test func anErrorTakesItsKindFromItsCode() {
        #expect(StewardError(.identityInvalidEmail, "x").kind.httpStatus == 400)
        #expect(StewardError(.subjectNotFound, "x").kind.httpStatus == 404)
        #expect(StewardError(.purposeUnknown, "x").kind.httpStatus == 422)
        #expect(StewardError(.confirmationExpired, "x").kind.httpStatus == 409)
        #expect(StewardError(.storeBusy, "x").kind.httpStatus == 503)
        #expect(StewardError(.rootKeyMismatch, "x").kind.httpStatus == nil)
    }

    @Test func theDocumentIsTheCatalogue() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let document = try String(contentsOf: root.appendingPathComponent("Docs/Errors.md"), encoding: .utf8)
        #expect(
            document == StewardError.Code.catalogueMarkdown(),
            "Docs/Errors.md is stale: swift build, then .build/debug/steward errors > Docs/Errors.md")
        for code in StewardError.Code.all { #expect(document.contains("| `\(code.rawValue)` |")) }
    }
}
