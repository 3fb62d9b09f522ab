import ArgumentParser
import Crypto
import Foundation
import StewardCore
import StewardInput
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
            let imports = try await wiring.withStore { try await ConsentImports(consent: $0.consentService).list() }
            var unfinished = 0
            for listing in imports {
                let job = listing.job
                let format = listing.payload?.format ?? "?"
                let digest = listing.payload.map { String($0.sha256.prefix(16)) + "…" } ?? (job.idempotencyKey ?? "?")
                print("\(listing.payload?.file ?? "(file name not recorded)")  \(format)  sha256 \(digest)")
                let started = "started \(Timestamp.iso8601(job.createdAt))"
                switch job.state {
                case .succeeded:
                    let finished = job.finishedAt.map { "finished \(Timestamp.iso8601($0))" } ?? "finished"
                    print("  \(started), \(finished)")
                    if let total = listing.total {
                        print("  \(total.accepted) accepted, \(total.rejected) rejected, \(total.lines) lines read")
                    }
                default:
                    unfinished += 1
                    if let position = listing.position, position.line > 0 {
                        print("  \(started), stopped: committed through line \(position.line) (resumes after it)")
                        print("  \(position.accepted) accepted, \(position.rejected) rejected so far")
                    } else {
                        print("  \(started), stopped before its first batch committed")
                    }
                    if job.state == .running, let owner = job.leaseOwner, let until = job.leaseExpiresAt {
                        print("  running now (\(owner), lease until \(Timestamp.iso8601(until)))")
                    }
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
                JSONL: one /v1/consents body per line. CSV: a header row naming any of \
                \(ConsentInput.csvColumns.joined(separator: ", ")) (names as written; \
                values of decision and method in lower case). A grant of consent needs noticeId and \
                noticeVersion. Docs/Import.md describes every column. Invalid lines are reported \
                with their number and reason and never stop the rest; method defaults to `import`.

                Double opt-in purposes: a grant with confirmedAt (when the person confirmed, ISO 8601) \
                is recorded as granted with that proof. A grant without it is recorded as pending only \
                with --tokens FILE, which receives each line's confirmation token to mail; without \
                --tokens such lines are rejected, so no pending record is left that nobody can confirm.

                Each batch commits with a checkpoint keyed by the file's SHA-256: if an import dies, \
                running it again on the same file resumes after the last committed line, and a file \
                imported completely is not imported twice unless --again is given.

                Exit status: 0 when every line was recorded (or the file was imported before), 2 when \
                the import finished but rejected lines (listed above the summary and in --rejects), 1 \
                when it could not run (an unreadable file, an unknown column, the database), 64 for a \
                usage error.
                """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The file to import (.csv, or .jsonl/.ndjson; other names are recognised by content).")
        var file: String
        @Option(help: "csv or jsonl (default: from the file's extension, else from its first line).") var format:
            String?
        @Option(help: "Records per transaction.") var batchSize = 10_000
        @Flag(help: "Import the file again even if it was imported completely before.") var again = false
        @Option(
            help: ArgumentHelp(
                "Write every rejected line's number and reason to this CSV file (line,code,field,detail).",
                valueName: "file")) var rejects: String?
        @Option(
            help: ArgumentHelp(
                "Record double opt-in grants without confirmedAt as pending and write each one's confirmation token to this new CSV file (line,subjectId,purpose,token,expiresAt; mode 0600) for mailing.",
                valueName: "file")) var tokens: String?

        func validate() throws {
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
            if let format, !["csv", "jsonl", "ndjson"].contains(format) {
                throw ValidationError("unknown format '\(format)'; use csv or jsonl")
            }
            if let tokens, FileManager.default.fileExists(atPath: tokens) {
                throw ValidationError("the tokens file \(tokens) exists; tokens are secrets: choose a new path")
            }
        }

        func run() async throws {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
                throw CLIError("cannot read \(file): no such file")
            }
            guard !isDirectory.boolValue else { throw CLIError("\(file) is a directory; give the file to import") }
            let kind = try Self.format(of: file, given: format)
            let digest = try fileDigest(file)
            let reader = try ImportReader(path: file, csv: kind == "csv")
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common))
            let log = try Rejections(path: rejects)
            let tokenFile = try tokens.map(TokenFile.init(path:))
            let started = Date()
            let batchSize = self.batchSize
            let again = self.again
            let name = (file as NSString).lastPathComponent
            let issueTokens = tokenFile != nil
            let outcome = try await wiring.withStore { wiring -> ImportOutcome? in
                let service = wiring.consentService
                let imports = ConsentImports(consent: service)
                // Find or enqueue this file's import job and lease it; a run that died holds its lease
                // for at most ConsentImports.leaseDuration, after which this run takes over.
                var run: ConsentImports.Run?
                var waited = false
                while run == nil {
                    switch try await imports.start(
                        file: name, format: kind, sha256: digest, again: again, actor: cliActor)
                    {
                    case .importedBefore: return nil
                    case .run(let leased): run = leased
                    case .busy(let until):
                        if !waited {
                            printErr(
                                "another run of this import holds it until \(Timestamp.iso8601(until)) (a run that died lets go then); waiting"
                            )
                            waited = true
                        }
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                guard let run else { return nil }
                let resumeAfter = run.resumeFrom?.line ?? 0
                let base = (accepted: run.resumeFrom?.accepted ?? 0, rejected: run.resumeFrom?.rejected ?? 0)
                if resumeAfter > 0 { printErr("resuming an interrupted import of this file after line \(resumeAfter)") }
                // Keeps the lease while a batch is prepared or written (each batch renews it too).
                let renewing = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(3))
                        if Task.isCancelled { return }
                        try? await imports.renew(run)
                    }
                }
                defer { renewing.cancel() }
                var outcome = ImportOutcome()
                var items: [ConsentService.BulkItem] = []
                // Two stages: while the store writes one batch (its own task), this task reads, parses and
                // prepares the next (validation, HMAC, sealing), so the two run on different cores.
                // Batches are written strictly in order, one at a time, so checkpoints only move forward.
                var writing: Task<ConsentService.BulkOutcome, any Error>?
                // How far through the file the batch in flight reaches, shown once it commits.
                var writingPercent = 0
                func collect(_ task: Task<ConsentService.BulkOutcome, any Error>?) async throws {
                    guard let task else { return }
                    let result = try await task.value
                    outcome.accepted += result.accepted
                    outcome.split += result.batchesSplit
                    outcome.pending += result.pending.count
                    try log.add(result.rejected)
                    try tokenFile?.add(result.pending)
                    ImportReader.showProgress(percent: writingPercent, accepted: outcome.accepted, rejected: log.count)
                }
                do {
                    while let read = try reader.next() {
                        for item in read {
                            outcome.lastLine = max(outcome.lastLine, item.line)
                            if item.line <= resumeAfter { outcome.skipped += 1 } else { items.append(item) }
                        }
                        if items.count < batchSize && !reader.finished { continue }
                        // Progress after every committed batch, by the line it reached (the reader is
                        // a chunk ahead): the percent through each line of this group, made here.
                        let percents = items.map { reader.percent(throughLine: $0.line) }
                        let prepared = service.prepareBulk(items, issueConfirmationTokens: issueTokens)
                        items.removeAll(keepingCapacity: true)
                        try await collect(writing)
                        let cursor = run.cursor(
                            accepted: base.accepted + outcome.accepted, rejected: base.rejected + log.count)
                        let (shown, refused) = (outcome.accepted, log.count)
                        writingPercent = percents.last ?? reader.percent
                        writing = Task {
                            try await service.recordPrepared(prepared, batchSize: batchSize, checkpoint: cursor) {
                                done in
                                let reached = percents.isEmpty ? 100 : percents[max(0, min(done, percents.count) - 1)]
                                ImportReader.showProgress(percent: reached, accepted: shown + done, rejected: refused)
                            }
                        }
                    }
                    try await collect(writing)
                    outcome.resumedAfter = resumeAfter
                    let total = ConsentImports.Summary(
                        accepted: base.accepted + outcome.accepted, rejected: base.rejected + log.count,
                        lines: outcome.lastLine)
                    try await imports.finish(
                        run, total: total, accepted: outcome.accepted, rejected: log.count, resumedAfter: resumeAfter,
                        actor: cliActor)
                } catch {
                    // The batch in flight commits (with its checkpoint) or fails before the store closes;
                    // then the job is handed back, to resume from its cursor on the next run.
                    _ = try? await writing?.value
                    await imports.release(run)
                    if error is JobLeaseLost {
                        throw CLIError(
                            "another run took this import over (this one stalled past its lease); nothing after its last checkpoint was recorded twice"
                        )
                    }
                    throw error
                }
                return outcome
            }
            try log.close()
            try tokenFile?.close()
            guard let outcome else {
                print("nothing imported: this file was imported completely before (--again imports it again)")
                return
            }
            printErr("")
            summarise(outcome, log: log, seconds: Date().timeIntervalSince(started))
            if log.count > 0 { throw ExitCode(2) }
        }

        /// What a run did, for its summary.
        struct ImportOutcome: Sendable {
            var accepted = 0
            var skipped = 0
            var split = 0
            var pending = 0
            var lastLine = 0
            var resumedAfter = 0
        }

        func summarise(_ outcome: ImportOutcome, log: Rejections, seconds: Double) {
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
            if outcome.pending > 0, let tokens {
                print(
                    "\(outcome.pending) double opt-in grant(s) recorded as pending: each line's confirmation token is in \(tokens); mail each person their link (your confirmation page calls POST /v1/consents/confirm)"
                )
            }
            if let needConfirmation = log.byCode["consent.confirmation_required"] {
                print(
                    "\(needConfirmation) double opt-in grant(s) were not recorded: add confirmedAt (when the person confirmed), or import with --tokens FILE to record them pending and mail confirmations"
                )
            }
            if outcome.split > 0 {
                print(
                    "\(outcome.split) batch(es) were refused by the database as a whole and applied again one line per transaction"
                )
            }
            if let rejects, log.count > 0 { print("every rejected line and its reason: \(rejects)") }
        }

        /// The format from `--format`, the extension, or the first line: a `{` starts JSON lines; a header
        /// of known CSV columns starts CSV. Anything else is refused with a hint rather than guessed.
        static func format(of path: String, given: String?) throws -> String {
            if let given { return given == "ndjson" ? "jsonl" : given }
            let lower = path.lowercased()
            if lower.hasSuffix(".csv") { return "csv" }
            if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return "jsonl" }
            guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
            defer { try? handle.close() }
            var head = [UInt8](try handle.read(upToCount: 4096) ?? Data())
            if head.starts(with: [0xEF, 0xBB, 0xBF]) { head.removeFirst(3) }
            let text = String(decoding: head, as: UTF8.self)
            let first = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            let trimmed = first.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("{") { return "jsonl" }
            let columns = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if !columns.isEmpty, columns.allSatisfy({ ConsentInput.csvColumns.contains($0) }) { return "csv" }
            throw ValidationError(
                "cannot tell whether \(path) is CSV or JSON lines from its name or its first line; pass --format csv or --format jsonl"
            )
        }
    }
}

/// The confirmation tokens of the double opt-in grants an import left pending, for the company to
/// mail: a new file, readable by its owner only (the tokens are secrets), one CSV row per grant.
final class TokenFile: @unchecked Sendable {  // used by one task at a time
    private let handle: FileHandle

    init(path: String) throws {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data("line,subjectId,purpose,token,expiresAt\n".utf8),
                attributes: [.posixPermissions: 0o600]),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw CLIError("cannot write the tokens file \(path)") }
        try handle.seekToEnd()
        self.handle = handle
    }

    func add(_ pending: [ConsentService.BulkPending]) throws {
        guard !pending.isEmpty else { return }
        var text = ""
        for grant in pending {
            text += "\(grant.line),\(grant.subjectID.lowercasedString),\(grant.purpose),\(grant.token),"
            text += Timestamp.iso8601(grant.expiresAt) + "\n"
        }
        try handle.write(contentsOf: Data(text.utf8))
    }

    func close() throws {
        try handle.synchronize()
        try handle.close()
    }
}

/// The rejected lines of an import: counted by reason, the first 50 kept for the summary, and every one
/// written to the `--rejects` file as it arrives, so memory does not grow with a file full of bad lines.
/// Reasons never quote the line's values, so the file holds no personal data.
final class Rejections: @unchecked Sendable {  // used by one task at a time
    static let shown = 50
    private(set) var count = 0
    private(set) var first: [ConsentService.BulkRejection] = []
    private(set) var byCode: [String: Int] = [:]
    private let handle: FileHandle?

    init(path: String?) throws {
        guard let path else {
            handle = nil
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: Data("line,code,field,detail\n".utf8)),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw CLIError("cannot write the rejects file \(path)") }
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
            byCode[rejection.error.code.rawValue, default: 0] += 1
            if handle != nil {
                text += "\(rejection.line),\(Self.csvField(rejection.error.code.rawValue)),"
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
    /// Per chunk, its last line and the bytes read through it: the reader runs a chunk (1 MiB)
    /// ahead of the batches, so progress is given for the line a batch reached, not the bytes read.
    private var spans: [(lastLine: Int, bytes: Int)] = []

    init(path: String, csv isCSV: Bool) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
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
        let items: [ConsentService.BulkItem]
        do {
            if var reader = csv {
                defer { csv = reader }
                items = chunk.isEmpty ? try reader.finish() : try reader.feed(chunk)
            } else if var reader = jsonl {
                defer { jsonl = reader }
                items = chunk.isEmpty ? reader.finish() : reader.feed(chunk)
            } else {
                return nil
            }
        } catch {
            throw CLIError(error.detail)
        }
        if let last = items.map(\.line).max() { spans.append((last, bytesRead)) }
        return items
    }

    /// How much of the file lies before the end of `line`, in percent: interpolated within the
    /// chunk that held it (a span per MiB read: a binary search).
    func percent(throughLine line: Int) -> Int {
        guard size > 0 else { return 100 }
        var (low, high) = (0, spans.count)
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].lastLine < line { low = middle + 1 } else { high = middle }
        }
        guard low < spans.count else { return percent }
        let (firstLine, before) = low > 0 ? spans[low - 1] : (0, 0)
        let span = spans[low]
        let bytes = before + (span.bytes - before) * max(0, line - firstLine) / max(1, span.lastLine - firstLine)
        return min(100, bytes * 100 / size)
    }

    /// How much of the file is read, in percent.
    var percent: Int { size == 0 ? 100 : min(100, bytesRead * 100 / size) }

    /// The progress line on standard error (rewritten in place on a terminal).
    static func showProgress(percent: Int, accepted: Int, rejected: Int) {
        let filled = percent / 5
        printErr(
            "\r[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 20 - filled))] \(percent)% \(accepted) imported, \(rejected) rejected",
            terminator: "")
    }
}

/// The file's SHA-256 in hex, read 1 MiB at a time: the identity of an import for its checkpoint.
/// Shows progress for files over 64 MiB (about 0.3 s per 100 MB here).
func fileDigest(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
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
