import Foundation
import StewardCore
@testable import StewardHTTP
import StewardServices
import StewardTesting
import Testing

/// The record path writes its 201 body by hand; it must be what JSONEncoder writes for the same value.
@Suite struct HandWrittenResponses {
    @Test func recordBodiesMatchJSONEncoderForEveryShapeOfOutcome() async throws {
        try await withHarness { h in
            var outcomes: [ConsentService.RecordOutcome] = []
            // Pending double opt-in: confirmation token and expiry, proof hashes, a source needing escapes.
            var pending = Fixtures.grant(Fixtures.email("shape@example.com"), "marketing.email")
            pending.source = "footer \"form\" / ünïcode \\ here"  // control characters are refused
            pending.proofIP = "203.0.113.9"
            pending.proofUserAgent = "Mozilla/5.0"
            pending.consentString = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
            let first = try await h.consent.record(pending)
            outcomes.append(first)
            // The confirmation: an event that confirms another, no notice.
            outcomes.append(try await h.consent.confirm(token: try #require(first.confirmationToken), actor: "test"))
            // A GPC opt-out riding along: non-empty gpcOptOuts, an existing subject.
            outcomes.append(
                try await h.consent.record(
                    Fixtures.decide(Fixtures.email("shape@example.com"), "analytics", .denied, gpc: true)))
            // A purpose without validity: no expiry anywhere.
            outcomes.append(
                try await h.consent.record(
                    Fixtures.decide(Fixtures.email("other@example.com"), "personalization", .granted)))
            #expect(outcomes[2].gpcEvents.count == 2)

            for outcome in outcomes {
                let response = recordResponse(outcome, policy: h.policy, now: h.clock.now)
                let encoded = String(decoding: try jsonEncoder.encode(response), as: UTF8.self)
                #expect(response.jsonText == encoded)
            }
        }
    }

    /// Strings the writer quotes the way JSONEncoder does, control characters included (sources and
    /// names refuse them, but policy text such as a notice id reaches the writer unchecked).
    @Test func theWriterQuotesStringsLikeJSONEncoder() throws {
        for value in [
            "plain", "quote \" backslash \\ slash /", "tab\t newline\n nul\u{0} unit\u{1F} del\u{7F}", "ünïcode ✓ 🎉",
        ] {
            var writer = JSONObjectWriter()
            writer.string("k", value)
            #expect(writer.finished() == String(decoding: try jsonEncoder.encode(["k": value]), as: UTF8.self))
        }
    }

    /// What the check's body must be: the synthesized encoding of these fields.
    struct CheckBody: Encodable {
        var allowed: Bool
        var basis: String
        var decidedAt: Date?
        var purpose: String
        var recordId: String?
        var status: String
    }

    @Test func checkBodiesMatchJSONEncoderWithAndWithoutADecision() async throws {
        try await withHarness { h in
            _ = try await h.consent.record(Fixtures.grant(Fixtures.email("check-shape@example.com"), "analytics"))
            let decided = try await h.consent.check(Fixtures.email("check-shape@example.com"), purpose: "analytics")
            let unknown = try await h.consent.check(Fixtures.email("nobody@example.com"), purpose: "personalization")
            for check in [decided, unknown] {
                let text = checkText(check)
                let expected = CheckBody(
                    allowed: check.allowed, basis: check.basis.rawValue, decidedAt: check.decidedAt,
                    purpose: check.purpose, recordId: check.recordID?.lowercasedString, status: check.status.rawValue)
                #expect(text == String(decoding: try jsonEncoder.encode(expected), as: UTF8.self))
            }
        }
    }
}
