import Foundation
import StewardCore
import StewardInput
import StewardHTTP
import StewardServices
import Testing

/// Seeded property tests over the parsers hostile input reaches first (issue 15): the CSV and
/// JSON-lines readers, the email and phone normalisers and the bearer-token parser. Each runs a few
/// thousand inputs mutated from valid seeds by a fixed-seed generator (so a CI failure replays
/// exactly), within a bounded time, and checks properties that must hold for every input, not
/// particular answers.
@Suite struct ParserFuzz {
    /// SplitMix64 (StewardCore): the same sequence for the same seed on every platform.
    typealias Generator = SplitMix64

    /// Bytes that matter to these parsers, and a few that must not.
    static let interesting: [UInt8] =
        Array("\",\n\r{}[]:@+.-_ =\\\t0aZ".utf8) + [
            0x00, 0x1B, 0x7F, 0xC3, 0xA9, 0xE2, 0x80, 0x8B, 0xEF, 0xBB, 0xBF, 0xFF,
        ]

    static func mutate(_ seed: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = seed
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            let choice = Int.random(in: 0..<4, using: &random)
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch choice {
            case 0: bytes.insert(interesting.randomElement(using: &random)!, at: at)
            case 1: if !bytes.isEmpty { bytes.remove(at: at) }
            case 2: if !bytes.isEmpty { bytes[at] = UInt8.random(in: 0...255, using: &random) }
            default:
                if !bytes.isEmpty {
                    let end = min(bytes.count, at + Int.random(in: 1...16, using: &random))
                    bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &random))
                }
            }
        }
        return bytes
    }

    /// Runs `body` on up to `count` inputs, stopping early after `seconds`.
    static func run(count: Int, seconds: Double = 3, seed: UInt64, _ body: (inout Generator) throws -> Void) rethrows {
        var random = Generator(seed: seed)
        let deadline = Date().addingTimeInterval(seconds)
        for _ in 0..<count where Date() < deadline { try body(&random) }
    }

    static func summary(_ items: [ConsentService.BulkItem]) -> [String] {
        items.map { item in
            switch item {
            case .command(let line, let command): "\(line) ok \(command.purpose) \(command.source ?? "-")"
            case .rejected(let line, let error): "\(line) \(error.code) \(error.field ?? "-")"
            }
        }
    }

    @Test func csvNeverCrashesReadsTheSameInAnyChunkingAndNamesEveryLineOnce() throws {
        let seed = Array(
            #"""
            email,purpose,decision,noticeId,noticeVersion,source
            a@example.com,analytics,granted,privacy-policy,2026-01,"form, ""footer"" "
            "b@example.com",sale,denied,,,"two
            lines"
            c@example.com,sale,withdrawn,,,web

            """#.utf8)
        Self.run(count: 20_000, seed: 1) { random in
            let input = Self.mutate(seed, &random)
            // Whole input at once.
            var whole: [ConsentService.BulkItem] = []
            var wholeError: StewardError?
            do { whole = try ConsentInput.csv(Data(input), actor: "fuzz") } catch {
                wholeError = error as? StewardError
            }
            // The same bytes in random pieces.
            var reader = ConsentInput.CSVReader(actor: "fuzz")
            var pieces: [ConsentService.BulkItem] = []
            var pieceError: StewardError?
            var start = 0
            do {
                while start < input.count {
                    let end = min(input.count, start + Int.random(in: 1...7, using: &random))
                    pieces += try reader.feed(input[start..<end])
                    start = end
                }
                pieces += try reader.finish()
            } catch { pieceError = error as? StewardError }
            #expect(wholeError?.code == pieceError?.code, "\(input)")
            guard wholeError == nil else { return }
            #expect(Self.summary(whole) == Self.summary(pieces), "\(input)")
            // Each line number at most once, in order, and none past the input.
            let lines = whole.map(\.line)
            #expect(lines == lines.sorted() && Set(lines).count == lines.count, "\(input)")
            let physical = input.split(separator: 0x0A, omittingEmptySubsequences: false)
            #expect((lines.last ?? 0) <= physical.count, "\(input)")
            // Without quotes a row is a line: every non-blank line after the header is one item.
            if !input.contains(UInt8(ascii: "\"")) {
                let rows = physical.dropFirst().filter { !$0.allSatisfy { $0 == 0x0D } }.count
                #expect(whole.count == rows, "\(input)")
            }
        }
    }

    @Test func jsonLinesNeverCrashAndEveryNonBlankLineIsAccountedFor() {
        let seed = Array(
            #"""
            {"subject":{"email":"a@example.com"},"purpose":"sale","decision":"denied","source":"x"}
            {"subject":{"phone":"+14155550100"},"purpose":"analytics","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"}}

            """#.utf8)
        Self.run(count: 20_000, seed: 2) { random in
            let input = Self.mutate(seed, &random)
            let items = ConsentInput.jsonLines(Data(input), actor: "fuzz")
            let blank: (ArraySlice<UInt8>) -> Bool = { $0.allSatisfy { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 } }
            let expected = input.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
                .filter { !blank($0.element) }.map { $0.offset + 1 }
            #expect(items.map(\.line) == expected, "\(input)")
        }
    }

    @Test func normalisersNeverCrashAreIdempotentAndLeaveNoRefusedCharacter() {
        let seeds = ["Zoë.O'Brien+news@Exämple.co.uk", "+1 (415) 555-0142", "0044 20 7946 0958", "cust-42"]
        Self.run(count: 20_000, seed: 3) { random in
            let seed = Array(seeds.randomElement(using: &random)!.utf8)
            let text = String(decoding: Self.mutate(seed, &random), as: UTF8.self)
            for kind in IdentityKind.allCases {
                guard let identity = try? NormalizedIdentity(kind: kind, raw: text) else { continue }
                let again = try? NormalizedIdentity(kind: kind, raw: identity.value)
                #expect(again?.value == identity.value, "\(kind) \(Array(text.utf8))")
                #expect(
                    !identity.value.unicodeScalars.contains { FreeText.refuses($0, kind: .identifier) },
                    "\(kind) \(Array(text.utf8))")
            }
        }
    }

    @Test func theBearerParserAcceptsOnlySchemeSpaceToken68() {
        let token68 = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=".utf8)
        Self.run(count: 50_000, seed: 4) { random in
            let input = String(decoding: Self.mutate(Array("Bearer stw_AbC-12_x".utf8), &random), as: UTF8.self)
            guard let token = bearerToken(in: input) else { return }
            let bytes = Array(input.utf8)
            #expect(bytes.count > 7 && String(decoding: bytes[0..<7], as: UTF8.self).lowercased() == "bearer ")
            #expect(String(token) == String(decoding: bytes[7...], as: UTF8.self))
            #expect(!token.isEmpty && token.utf8.allSatisfy(token68.contains) && token.first != "=")
            if let padding = token.firstIndex(of: "=") { #expect(token[padding...].allSatisfy { $0 == "=" }) }
        }
    }
}
