import Foundation
import StewardCore
import StewardInput
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
            case .rejected(let line, let error): rejected[line] = error.code.rawValue
            }
        }
        return (accepted, rejected)
    }

    @Test func csvWithQuotesEmbeddedCommasNewlinesAndCRLF() throws {
        let csv =
            "email,purpose,decision,noticeId,noticeVersion,source\r\n"
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

    @Test func chunkedReadingGivesWhatWholeReadingGives() throws {
        // The import reads files 4 MiB at a time: quotes, doubled quotes, CRLF and newlines inside
        // fields may straddle any boundary. A row with invalid UTF-8 is rejected alone.
        var csv = Data("email,purpose,decision,source\r\n".utf8)
        csv += Data("a@example.com,analytics,denied,\"say \"\"hi\"\", then\r\nleave\"\r\n".utf8)
        csv += Data("b@example.com,analytics,denied,".utf8) + Data([0xFF, 0xFE]) + Data("\n".utf8)
        csv += Data("c@example.com,analytics,denied,\"\"\"\"\n".utf8)
        csv += Data("d@example.com,analytics,denied,last".utf8)  // no final newline
        func summary(_ items: [ConsentService.BulkItem]) -> [String] {
            items.map { item in
                switch item {
                case .command(let line, let command): "\(line) ok \(command.source ?? "-")"
                case .rejected(let line, let error): "\(line) \(error.code)"
                }
            }
        }
        let whole = summary(try ConsentInput.csv(csv, actor: "cli:test"))
        #expect(whole == ["2 ok say \"hi\", then\r\nleave", "4 import.not_utf8", "5 ok \"", "6 ok last"])
        for size in [1, 2, 3, 7, 64] {
            var reader = ConsentInput.CSVReader(actor: "cli:test")
            var items: [ConsentService.BulkItem] = []
            var offset = 0
            while offset < csv.count {
                items += try reader.feed(csv[offset..<min(offset + size, csv.count)])
                offset += size
            }
            items += try reader.finish()
            #expect(summary(items) == whole, "chunks of \(size)")
        }

        let jsonl = Data(
            """
            {"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"denied","source":"x"}

            {"subject":{"email":"b@example.com"},"purpose":"analytics","decision":"nope"}
            {"subject":{"email":"c@example.com"},"purpose":"analytics","decision":"denied"}
            """.utf8)
        let wholeLines = summary(ConsentInput.jsonLines(jsonl, actor: "cli:test"))
        #expect(wholeLines == ["1 ok x", "3 decision.invalid", "4 ok -"])
        for size in [1, 5, 33] {
            var reader = ConsentInput.JSONLinesReader(actor: "cli:test")
            var items: [ConsentService.BulkItem] = []
            var offset = 0
            while offset < jsonl.count {
                items += reader.feed(jsonl[offset..<min(offset + size, jsonl.count)])
                offset += size
            }
            items += reader.finish()
            #expect(summary(items) == wholeLines, "chunks of \(size)")
        }
    }

    @Test func unknownCSVColumnsAreRefusedUpFront() {
        do {
            _ = try ConsentInput.csv(
                Data("email,purpose,colour\nx@example.com,analytics,blue\n".utf8), actor: "cli:test")
            Issue.record("accepted an unknown column")
        } catch {
            #expect(error.code.rawValue == "import.unknown_column")
            #expect(error.field == "header")
            #expect(error.detail.hasPrefix("column 3 of the first row"))
            #expect(!error.detail.contains("colour"))
        }
    }

    /// Issue 15, defect 8: rows the CSV reader lost or mangled in silence.
    @Test func malformedQuotesAreReportedOnTheirLineAndLoseNoOtherRow() throws {
        // A quote inside an unquoted field opened quote mode and swallowed the rows after it.
        let stray =
            "email,purpose,decision,source\n"
            + "a@example.com,sale,denied,O\"Brien's form\n"
            + "b@example.com,sale,denied,web\n"
            + "c@example.com,sale,denied,\"quoted\"tail\n"
            + "d@example.com,sale,denied,web\n"
        let strayResult = lines(try ConsentInput.csv(Data(stray.utf8), actor: "cli:test"))
        #expect(strayResult.accepted == [3, 5])
        #expect(strayResult.rejected == [2: "import.stray_quote", 4: "import.stray_quote"])
        // A quoted field that never closes is reported where it opened, with the lines it took in.
        let unclosed =
            "email,purpose,decision\n"
            + "a@example.com,sale,denied\n"
            + "\"b@example.com,sale,denied\n"
            + "c@example.com,sale,denied\n"
            + "d@example.com,sale,denied\n"
        let items = try ConsentInput.csv(Data(unclosed.utf8), actor: "cli:test")
        #expect(lines(items).accepted == [2])
        #expect(lines(items).rejected == [3: "import.unclosed_quote"])
        if case .rejected(_, let error) = items.last { #expect(error.detail.contains("the 2 line(s) after it")) }
        // The same, read one byte at a time.
        var reader = ConsentInput.CSVReader(actor: "cli:test")
        var chunked: [ConsentService.BulkItem] = []
        for byte in Data(unclosed.utf8) { chunked += try reader.feed([byte]) }
        chunked += try reader.finish()
        #expect(lines(chunked).accepted == [2] && lines(chunked).rejected == [3: "import.unclosed_quote"])
    }

    @Test func aFieldPast64KiBRejectsItsRowAndHoldsNoMore() throws {
        var reader = ConsentInput.CSVReader(actor: "cli:test")
        var items = try reader.feed(Data("email,purpose,decision,source\na@example.com,sale,denied,".utf8))
        let megabyte = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<4 { items += try reader.feed(megabyte) }
        items += try reader.feed(Data("\nb@example.com,sale,denied,web\n".utf8)) + (try reader.finish())
        #expect(lines(items).rejected == [2: "import.field_too_long"] && lines(items).accepted == [3])
    }

    @Test func aByteOrderMarkIsSkippedAndADuplicateColumnRefused() throws {
        let bom = Data([0xEF, 0xBB, 0xBF]) + Data("email,purpose,decision\na@example.com,sale,denied\n".utf8)
        #expect(lines(try ConsentInput.csv(bom, actor: "cli:test")).accepted == [2])
        var reader = ConsentInput.CSVReader(actor: "cli:test")
        var split: [ConsentService.BulkItem] = []
        for byte in bom { split += try reader.feed([byte]) }
        #expect(lines(split + (try reader.finish())).accepted == [2])
        do {
            _ = try ConsentInput.csv(
                Data("email,purpose,decision,purpose\nx@example.com,sale,denied,analytics\n".utf8), actor: "cli:test")
            Issue.record("accepted a duplicate column")
        } catch {
            #expect(error.code.rawValue == "import.duplicate_column" && error.field == "purpose")
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
            let csv =
                "phone,purpose,decision\n+44 20 7946 0000,personalization,denied\n+44 20 7946 0001,no.such,denied\n"
            let outcome = try await h.consent.recordBulk(try ConsentInput.csv(Data(csv.utf8), actor: "cli:test"))
            #expect(outcome.accepted == 1)
            #expect(outcome.rejected.map(\.line) == [3])
            let phone = SubjectReference.identity(try NormalizedIdentity(kind: .phone, raw: "+442079460000"))
            #expect(try await h.consent.check(phone, purpose: "personalization").allowed == false)
        }
    }
}
