import ArgumentParser
import Crypto
import Foundation
import StewardCore
import StewardHTTP
import StewardServices

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Bulk consent operations.", subcommands: [Import.self, Imports.self])

    struct Imports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the imports this database has checkpoints for: finished, or where each stopped.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let imports = try await wiring.withStore { wiring in
                try await wiring.consentService.importCheckpoints()
            }
            var unfinished = 0
            for (key, state) in imports {
                // import:<format>:<SHA-256 of the file>
                let parts = key.split(separator: ":", maxSplits: 2)
                let label = parts.count == 3 ? "\(parts[1])  sha256 \(parts[2])" : key
                switch state {
                case .finished: print("\(label)  finished")
                case .committed(let line):
                    unfinished += 1
                    print("\(label)  stopped after line \(line)")
                case .fresh:
                    unfinished += 1
                    print("\(label)  started, no batch committed")
                }
            }
            print(
                "\(imports.count) import(s): \(imports.count - unfinished) finished, \(unfinished) unfinished"
                    + (unfinished > 0 ? " (run `steward consent import` on the same file to resume it)" : ""))
        }
    }

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
        @Option(
            help: ArgumentHelp(
                "Write every rejected line's number and reason to this CSV file (line,code,field,detail).",
                valueName: "file")) var rejects: String?

        func run() async throws {
            let kind = format ?? (file.lowercased().hasSuffix(".csv") ? "csv" : "jsonl")
            guard ["csv", "jsonl", "ndjson"].contains(kind) else {
                throw ValidationError("unknown format '\(kind)'; use jsonl or csv")
            }
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
            let checkpoint = "import:\(kind):" + (try fileDigest(file))
            let reader = try ImportReader(path: file, csv: kind == "csv")
            let log = try Rejections(path: rejects)
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common))
            let started = Date()
            let batchSize = self.batchSize
            let again = self.again
            let outcome = try await wiring.withStore { wiring -> (accepted: Int, skipped: Int, split: Int)? in
                let service = wiring.consentService
                var resumeAfter = 0
                switch try await service.importCheckpoint(checkpoint) {
                case .finished where !again:
                    return nil
                case .committed(let line) where !again:
                    resumeAfter = line
                    printErr("resuming an interrupted import of this file after line \(line)")
                default: break
                }
                var accepted = 0
                var skipped = 0
                var split = 0
                var pending: [ConsentService.BulkItem] = []
                // Two stages: while the store writes one batch (its own task), this task reads, parses and
                // prepares the next (validation, HMAC, sealing), so the two run on different cores.
                // Batches are written strictly in order, one at a time, so checkpoints only move forward.
                var writing: Task<ConsentService.BulkOutcome, any Error>?
                func collect(_ task: Task<ConsentService.BulkOutcome, any Error>?) async throws {
                    guard let task else { return }
                    let result = try await task.value
                    accepted += result.accepted
                    split += result.batchesSplit
                    try log.add(result.rejected)
                    reader.showProgress(accepted: accepted, rejected: log.count)
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
                try await service.finishImport(
                    checkpoint, accepted: accepted, rejected: log.count, resumedAfter: resumeAfter, actor: cliActor)
                return (accepted: accepted, skipped: skipped, split: split)
            }
            try log.close()
            guard let outcome else {
                print("nothing imported: this file was imported completely before (--again imports it again)")
                return
            }
            printErr("")
            let seconds = Date().timeIntervalSince(started)
            for rejection in log.first {
                print(
                    "line \(rejection.line): \(rejection.error.code)\(rejection.error.field.map { " [\($0)]" } ?? ""): \(rejection.error.detail)"
                )
            }
            if log.count > log.first.count {
                print(
                    "… and \(log.count - log.first.count) more rejected lines"
                        + (rejects == nil ? " (--rejects FILE lists them all)" : ""))
            }
            let total = outcome.accepted + log.count
            let rate = seconds > 0 ? Int(Double(outcome.accepted) / seconds) : outcome.accepted
            let resumed =
                outcome.skipped > 0 ? "; \(outcome.skipped) lines before the checkpoint were done already" : ""
            print(
                "imported \(outcome.accepted) of \(total) records in \(String(format: "%.1f", seconds)) s (\(rate)/s); rejected \(log.count)\(log.summary)\(resumed)"
            )
            if outcome.split > 0 {
                print(
                    "\(outcome.split) batch(es) were refused by the database as a whole and applied again one line per transaction"
                )
            }
            if let rejects, log.count > 0 { print("every rejected line and its reason: \(rejects)") }
            if log.count > 0 { throw ExitCode(2) }
        }
    }
}

/// The rejected lines of an import: counted by reason, the first 50 kept for the summary, and every one
/// written to the `--rejects` file as it arrives, so memory does not grow with a file full of bad lines.
/// Reasons never quote the line's values, so the file holds no personal data.
final class Rejections: @unchecked Sendable {  // used by one task at a time
    static let shown = 50
    private(set) var count = 0
    private(set) var first: [ConsentService.BulkRejection] = []
    private var byCode: [String: Int] = [:]
    private let handle: FileHandle?

    init(path: String?) throws {
        guard let path else {
            handle = nil
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: Data("line,code,field,detail\n".utf8)),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw ValidationError("cannot write the rejects file \(path)") }
        try handle.seekToEnd()
        self.handle = handle
    }

    /// Adds a batch's rejections (in line order; batches arrive in line order).
    func add(_ rejections: [ConsentService.BulkRejection]) throws {
        guard !rejections.isEmpty else { return }
        count += rejections.count
        first += rejections.prefix(Self.shown - first.count)
        var text = ""
        for rejection in rejections {
            byCode[rejection.error.code, default: 0] += 1
            if handle != nil {
                text += "\(rejection.line),\(Self.csvField(rejection.error.code)),"
                text += "\(Self.csvField(rejection.error.field ?? "")),\(Self.csvField(rejection.error.detail))\n"
            }
        }
        if let handle { try handle.write(contentsOf: Data(text.utf8)) }
    }

    func close() throws { try handle?.close() }

    /// " (by reason: code ×n, …)", most frequent first; empty when nothing was rejected.
    var summary: String {
        guard !byCode.isEmpty else { return "" }
        let reasons = byCode.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) ×\($0.value)" }
        return " (by reason: " + reasons.joined(separator: ", ") + ")"
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
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
/// Shows progress for files over 64 MiB (about 0.3 s per 100 MB here).
func fileDigest(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
    defer { try? handle.close() }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    let showProgress = size > 64 << 20
    var hasher = SHA256()
    var read = 0
    var shown = -1
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        hasher.update(data: chunk)
        read += chunk.count
        if showProgress, read * 100 / size != shown {
            shown = read * 100 / size
            printErr("\rreading the file's SHA-256 (its import checkpoint key): \(shown)%", terminator: "")
        }
    }
    if showProgress { printErr("") }
    return Data(hasher.finalize()).hexString
}
