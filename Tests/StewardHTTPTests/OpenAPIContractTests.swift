import Foundation
import StewardCore
import StewardTesting
import Testing

@testable import StewardHTTP

/// The OpenAPI document says what the server enforces (issue 15, item 10): the loaded policy's
/// purposes and notices as enumerations, the shared text validator's rules as patterns, and
/// Docs/openapi.json is the document for the default policy. `Scripts/fuzz-api.sh` then holds the
/// running server to it: no request the document admits is refused for its shape.
@Suite struct OpenAPIContract {
    static func document(_ policy: PolicySet) throws -> [String: Any] {
        let text = OpenAPIRendering.document(policy: policy)
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func schema(_ document: [String: Any], _ name: String) -> [String: Any]? {
        ((document["components"] as? [String: Any])?["schemas"] as? [String: Any])?[name] as? [String: Any]
    }

    @Test func purposesAndNoticesAreTheLoadedPolicys() throws {
        let document = try Self.document(Fixtures.policy)
        let all = Fixtures.policy.sortedPurposes
        #expect(Self.schema(document, "PurposeKey")?["enum"] as? [String] == all.map(\.key))
        #expect(
            Self.schema(document, "RecordablePurposeKey")?["enum"] as? [String]
                == all.filter { $0.mechanism != .noticeOnly }.map(\.key))
        #expect(
            Self.schema(document, "ConsentPurposeKey")?["enum"] as? [String]
                == all.filter { $0.legalBasis == .consent && $0.mechanism != .noticeOnly }.map(\.key))
        let notices = try #require(Self.schema(document, "NoticeRef")?["enum"] as? [[String: String]])
        #expect(notices == Fixtures.policy.sortedNotices.map { ["id": $0.id, "version": $0.version] })
        // The test policy differs from the default one, so these are not the template's values.
        #expect(all.map(\.key) != ["analytics"])

        // A policy with no notices admits no notice at all (an empty enum is not valid JSON Schema).
        let bare = PolicySet(purposes: Array(Fixtures.policy.purposes.values), notices: [], digest: "bare")
        let noticeRef = try #require(Self.schema(try Self.document(bare), "NoticeRef"))
        #expect(noticeRef["enum"] == nil)
        #expect((noticeRef["not"] as? [String: Any])?.isEmpty == true)
    }

    @Test func everyTextSchemaHasThePatternOfItsValidator() throws {
        let text = OpenAPIRendering.document(policy: Fixtures.policy)
        #expect(!text.contains("x-steward-text"))
        let document = try Self.document(Fixtures.policy)
        let name = try #require(
            ((Self.schema(document, "CreateKey")?["properties"] as? [String: Any])?["name"] as? [String: Any])?[
                "pattern"] as? String)
        #expect(name == OpenAPIRendering.textPattern("trimmed-name", maxLength: 100))
        let externalID = try #require(Self.schema(document, "ExternalId")?["pattern"] as? String)
        #expect(externalID == OpenAPIRendering.textPattern("trimmed-identifier", maxLength: 256))
        // The length is in the pattern too: 100 characters match, 101 do not.
        let bounded = try NSRegularExpression(
            pattern: try #require(OpenAPIRendering.textPattern("identifier", maxLength: 100)))
        for (count, matches) in [(100, true), (101, false), (1, true)] {
            let text = String(repeating: "a", count: count)
            #expect((bounded.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil) == matches)
        }
        let trimmedBounded = try NSRegularExpression(
            pattern: try #require(OpenAPIRendering.textPattern("trimmed-name", maxLength: 3)))
        for (text, matches) in [("abc", true), ("a c", true), ("abcd", false), ("a", true), (" ab", false)] {
            #expect(
                (trimmedBounded.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil) == matches,
                "\(text)")
        }
    }

    /// Every Basic Multilingual Plane character, through a real regex engine (ICU's), against
    /// `FreeText`: the pattern admits a character exactly when the validator accepts it.
    @Test(arguments: ["name", "identifier"])
    func thePatternAgreesWithFreeTextOnEveryCharacter(kind: String) throws {
        let textKind: FreeText.Kind = kind == "name" ? .name : .identifier
        let regex = try NSRegularExpression(pattern: try #require(OpenAPIRendering.textPattern(kind)))
        let trimmed = try NSRegularExpression(pattern: try #require(OpenAPIRendering.textPattern("trimmed-" + kind)))
        func matches(_ expression: NSRegularExpression, _ text: String) -> Bool {
            expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
        var disagreements: [String] = []
        for value in UInt32(0)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "a" + String(Character(scalar)) + "b"
            let accepted =
                (try? FreeText.check(text, field: "f", maxLength: 10, kind: textKind, lengthCode: .keyInvalidName))
                != nil
            if matches(regex, text) != accepted { disagreements.append(String(value, radix: 16)) }
            // In a trimmed field, the character inside a value behaves the same.
            if matches(trimmed, text) != accepted { disagreements.append("trimmed " + String(value, radix: 16)) }
        }
        #expect(disagreements.isEmpty, "pattern and validator disagree on U+\(disagreements.prefix(20))")
        // Trimmed fields: no white space at either end, and none that is white space only.
        for text in [" a", "a ", "\u{3000}a", "a\u{A0}", " ", "\u{2003}"] {
            #expect(!matches(trimmed, text), "\(text.unicodeScalars.map(\.value))")
        }
        for text in ["a", "a b", "ab"] { #expect(matches(trimmed, text)) }
    }

    /// `steward policy openapi` prints the document for ./Policies; Docs/openapi.json is that output.
    @Test func docsOpenAPIJSONIsTheDocumentForTheDefaultPolicy() async throws {
        let (status, expected) = try await BuiltBinary.run(["policy", "openapi"])
        #expect(status == 0)
        #expect(expected.hasPrefix("{") && expected.contains("\"newsletter-signup\""))
        let file = try String(
            contentsOf: BuiltBinary.packageRoot.appendingPathComponent("Docs/openapi.json"), encoding: .utf8)
        #expect(
            file == expected,
            "Docs/openapi.json is stale: run Scripts/openapi.py, rebuild, then .build/debug/steward policy openapi > Docs/openapi.json"
        )
    }
}
