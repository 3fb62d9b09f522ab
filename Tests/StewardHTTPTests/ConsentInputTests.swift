import Foundation
import StewardCore
import StewardHTTP
import StewardServices
import StewardTesting
import Testing

/// `steward consent import` and `POST /v1/consents/bulk` share this parser: an import must accept
/// exactly what the API accepts, and name the line and field of what it rejects.
@Suite struct ConsentInputParsing {
    func lines(_ items: [ConsentService.BulkItem]) -> (accepted: [Int], rejected: [Int: String]) {
        var accepted: [Int] = []
        var rejected: [Int: String] = [:]
        for item in items {
            switch item {
            case .command(let line, _): accepted.append(line)
            case .rejected(let line, let error): rejected[line] = error.code
            }
        }
        return (accepted, rejected)
    }

    @Test func csvWithQuotesEmbeddedCommasNewlinesAndCRLF() throws {
        let csv = "email,purpose,decision,noticeId,noticeVersion,source\r\n"
            + "a@example.com,analytics,granted,privacy-policy,2026-01,\"form, footer\"\r\n"
            + "\"B@Example.com\",sale,denied,,,\"two\nlines\"\r\n"
            + "bad-email,analytics,granted,,,\r\n"
            + "c@example.com,analytics\r\n"
            + "d@example.com,analytics,maybe,,,\r\n"
        let items = try ConsentInput.csv(Data(csv.utf8), actor: "cli:test")
        let result = lines(items)
        #expect(result.accepted == [2, 3])
        #expect(result.rejected == [5: "identity.invalid_email", 6: "import.column_count", 7: "decision.invalid"])
        guard case .command(_, let first) = items[0], case .command(_, let second) = items[1] else {
            Issue.record("expected commands")
            return
        }
        #expect(first.source == "form, footer")
        #expect(first.method == .import)
        #expect(first.notice == Fixtures.notice)
        #expect(second.source == "two\nlines")
        #expect(second.subject == Fixtures.email("b@example.com"))
    }

    @Test func unknownCSVColumnsAreRefusedUpFront() {
        do {
            _ = try ConsentInput.csv(Data("email,purpose,colour\nx@example.com,analytics,blue\n".utf8), actor: "cli:test")
            Issue.record("accepted an unknown column")
        } catch {
            #expect(error.code == "import.unknown_column")
            #expect(error.field == "colour")
        }
    }

    @Test func jsonLinesUseTheAPIValidationAndTheCallersDefaultMethod() {
        let data = Data(
            """
            {"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"}}

            {"subject":{"email":"a@example.com","phone":"+14155550100"},"purpose":"analytics","decision":"denied"}
            {"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"denied","method":"gpc"}
            not json
            """.utf8)
        let items = ConsentInput.jsonLines(data, actor: "cli:test", defaultMethod: .import)
        let result = lines(items)
        #expect(result.accepted == [1, 4])
        #expect(result.rejected == [3: "subject.ambiguous", 5: "request.malformed_json"])
        if case .command(_, let command) = items[0] { #expect(command.method == .import) }
    }

    @Test func importedLinesRecordThroughTheLedger() async throws {
        try await withHarness { h in
            let csv = "phone,purpose,decision\n+44 20 7946 0000,personalization,denied\n+44 20 7946 0001,no.such,denied\n"
            let outcome = try await h.consent.recordBulk(try ConsentInput.csv(Data(csv.utf8), actor: "cli:test"))
            #expect(outcome.accepted == 1)
            #expect(outcome.rejected.map(\.line) == [3])
            let phone = SubjectReference.identity(try NormalizedIdentity(kind: .phone, raw: "+442079460000"))
            #expect(try await h.consent.check(phone, purpose: "personalization").allowed == false)
        }
    }
}
