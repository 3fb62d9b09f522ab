import ArgumentParser
import Foundation
import StewardCore
import StewardHTTP
import StewardServices

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Bulk consent operations.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import consent decisions from JSON lines or CSV, in atomic batches.",
            discussion: """
                JSONL: one /v1/consents body per line. CSV: a header row naming any of
                email, phone, externalId, deviceId, subjectId, purpose, decision, method, noticeId,
                noticeVersion, source, consentString. Invalid lines are reported with their number and
                reason and never stop the rest; method defaults to `import`.
                """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The file to import (.jsonl, .ndjson or .csv).") var file: String
        @Option(help: "jsonl or csv (default: from the file extension).") var format: String?
        @Option(help: "Records per transaction.") var batchSize = 10_000

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let kind = format ?? (file.lowercased().hasSuffix(".csv") ? "csv" : "jsonl")
            let items: [ConsentService.BulkItem]
            switch kind {
            case "csv": items = try csvItems(data)
            case "jsonl", "ndjson": items = ConsentInput.jsonLines(data, actor: cliActor, defaultMethod: .import)
            default: throw ValidationError("unknown format '\(kind)'; use jsonl or csv")
            }
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common))
            let total = items.count
            let started = Date()
            let outcome = try await wiring.withStore { wiring in
                try await wiring.store.migrate()
                return try await wiring.consentService.recordBulk(items, batchSize: batchSize) { done in
                    let percent = total == 0 ? 100 : done * 100 / total
                    let filled = percent / 5
                    printErr(
                        "\r[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 20 - filled))] \(percent)% \(done) lines",
                        terminator: "")
                }
            }
            printErr("")
            let seconds = Date().timeIntervalSince(started)
            for rejection in outcome.rejected.prefix(50) {
                print("line \(rejection.line): \(rejection.error.code)\(rejection.error.field.map { " [\($0)]" } ?? ""): \(rejection.error.detail)")
            }
            if outcome.rejected.count > 50 { print("… and \(outcome.rejected.count - 50) more rejected lines") }
            let rate = seconds > 0 ? Int(Double(outcome.accepted) / seconds) : outcome.accepted
            print(
                "imported \(outcome.accepted) of \(total) records in \(String(format: "%.1f", seconds)) s (\(rate)/s); rejected \(outcome.rejected.count)")
            if !outcome.rejected.isEmpty { throw ExitCode(2) }
        }
    }
}

/// Synchronous on purpose: a typed-throws catch inside the async `run()` crashes Swift 6.3's SIL verifier.
func csvItems(_ data: Data) throws -> [ConsentService.BulkItem] {
    do {
        return try ConsentInput.csv(data, actor: cliActor)
    } catch {
        throw ValidationError(error.detail)
    }
}
