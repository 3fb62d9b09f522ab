import ArgumentParser
import Crypto
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

                Each batch commits with a checkpoint keyed by the file's SHA-256: if an import dies,
                running it again on the same file resumes after the last committed line, and a file
                imported completely is not imported twice unless --again is given.
                """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The file to import (.jsonl, .ndjson or .csv).") var file: String
        @Option(help: "jsonl or csv (default: from the file extension).") var format: String?
        @Option(help: "Records per transaction.") var batchSize = 10_000
        @Flag(help: "Import the file again even if it was imported completely before.") var again = false

        func run() async throws {
            let kind = format ?? (file.lowercased().hasSuffix(".csv") ? "csv" : "jsonl")
            guard ["csv", "jsonl", "ndjson"].contains(kind) else {
                throw ValidationError("unknown format '\(kind)'; use jsonl or csv")
            }
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
            let checkpoint = "import:\(kind):" + (try fileDigest(file))
            let reader = try ImportReader(path: file, csv: kind == "csv")
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common))
            let started = Date()
            let batchSize = self.batchSize
            let again = self.again
            let outcome = try await wiring.withStore { wiring in
                try await wiring.store.migrate()
                let service = wiring.consentService
                var resumeAfter = 0
                switch try await service.importCheckpoint(checkpoint) {
                case .finished where !again:
                    printErr("this file was imported completely before; nothing to do (--again imports it again)")
                    return (accepted: 0, rejected: [ConsentService.BulkRejection](), skipped: 0)
                case .committed(let line) where !again:
                    resumeAfter = line
                    printErr("resuming an interrupted import of this file after line \(line)")
                default: break
                }
                var accepted = 0
                var skipped = 0
                var rejected: [ConsentService.BulkRejection] = []
                var pending: [ConsentService.BulkItem] = []
                // Two stages: while the store writes one batch (its own task), this task reads, parses and
                // prepares the next (validation, HMAC, sealing), so the two run on different cores.
                // Batches are written strictly in order, one at a time, so checkpoints only move forward.
                var writing: Task<ConsentService.BulkOutcome, any Error>?
                func collect(_ task: Task<ConsentService.BulkOutcome, any Error>?) async throws {
                    guard let task else { return }
                    let result = try await task.value
                    accepted += result.accepted
                    rejected += result.rejected
                    reader.showProgress(accepted: accepted, rejected: rejected.count)
                }
                do {
                    while let items = try reader.next() {
                        for item in items {
                            if item.line <= resumeAfter { skipped += 1 } else { pending.append(item) }
                        }
                        if pending.count < batchSize && !reader.finished { continue }
                        let prepared = service.prepareBulk(pending)
                        pending.removeAll(keepingCapacity: true)
                        try await collect(writing)
                        writing = Task {
                            try await service.recordPrepared(prepared, batchSize: batchSize, checkpoint: checkpoint)
                        }
                    }
                    try await collect(writing)
                } catch {
                    // The batch in flight commits (with its checkpoint) or fails before the store closes.
                    _ = try? await writing?.value
                    throw error
                }
                try await service.finishImport(checkpoint)
                return (accepted: accepted, rejected: rejected.sorted { $0.line < $1.line }, skipped: skipped)
            }
            printErr("")
            let seconds = Date().timeIntervalSince(started)
            for rejection in outcome.rejected.prefix(50) {
                print(
                    "line \(rejection.line): \(rejection.error.code)\(rejection.error.field.map { " [\($0)]" } ?? ""): \(rejection.error.detail)"
                )
            }
            if outcome.rejected.count > 50 { print("… and \(outcome.rejected.count - 50) more rejected lines") }
            let total = outcome.accepted + outcome.rejected.count
            let rate = seconds > 0 ? Int(Double(outcome.accepted) / seconds) : outcome.accepted
            let resumed =
                outcome.skipped > 0 ? "; \(outcome.skipped) lines before the checkpoint were done already" : ""
            print(
                "imported \(outcome.accepted) of \(total) records in \(String(format: "%.1f", seconds)) s (\(rate)/s); rejected \(outcome.rejected.count)\(resumed)"
            )
            if !outcome.rejected.isEmpty { throw ExitCode(2) }
        }
    }
}

/// Reads an import file piece by piece (1 MiB at a time) and hands on the records completed so far:
/// memory is bounded by the chunk and the batch, not by the file.
final class ImportReader: @unchecked Sendable {  // used by one task at a time
    private let handle: FileHandle
    private let size: Int
    private var csv: ConsentInput.CSVReader?
    private var jsonl: ConsentInput.JSONLinesReader?
    private var bytesRead = 0
    private(set) var finished = false

    init(path: String, csv isCSV: Bool) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
        self.handle = handle
        size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if isCSV {
            csv = ConsentInput.CSVReader(actor: cliActor)
        } else {
            jsonl = ConsentInput.JSONLinesReader(actor: cliActor, defaultMethod: .import)
        }
    }

    deinit { try? handle.close() }

    /// The records completed by the next chunk (possibly none), or nil once the file is done.
    /// Synchronous on purpose: a typed-throws catch inside an async function crashes Swift 6.3's
    /// SIL verifier.
    func next() throws -> [ConsentService.BulkItem]? {
        if finished { return nil }
        let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
        bytesRead += chunk.count
        if chunk.isEmpty { finished = true }
        do {
            if var reader = csv {
                defer { csv = reader }
                return chunk.isEmpty ? try reader.finish() : try reader.feed(chunk)
            }
            if var reader = jsonl {
                defer { jsonl = reader }
                return chunk.isEmpty ? reader.finish() : reader.feed(chunk)
            }
            return nil
        } catch {
            throw ValidationError(error.detail)
        }
    }

    func showProgress(accepted: Int, rejected: Int) {
        let percent = size == 0 ? 100 : min(100, bytesRead * 100 / size)
        let filled = percent / 5
        printErr(
            "\r[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 20 - filled))] \(percent)% \(accepted) imported, \(rejected) rejected",
            terminator: "")
    }
}

/// The file's SHA-256 in hex, read 1 MiB at a time: the identity of an import for its checkpoint.
func fileDigest(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return Data(hasher.finalize()).hexString
}
