import ArgumentParser
import Foundation
import StewardCore
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
        @Option(help: "Records per transaction.") var batchSize = 2_000

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let kind = format ?? (file.lowercased().hasSuffix(".csv") ? "csv" : "jsonl")
            let items: [ConsentService.BulkItem]
            switch kind {
            case "csv": items = try parseCSV(data, actor: cliActor)
            case "jsonl", "ndjson": items = parseImportLines(data, actor: cliActor)
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

struct ImportLine: Decodable {
    struct Subject: Decodable {
        var email: String?
        var phone: String?
        var externalId: String?
        var deviceId: String?
        var subjectId: String?
    }
    struct NoticeRef: Decodable {
        var id: String
        var version: String
    }
    var subject: Subject?
    var purpose: String?
    var decision: String?
    var method: String?
    var notice: NoticeRef?
    var source: String?
    var consentString: String?
}

/// Builds a bulk item from named fields, with the same validation as the API.
func importItem(line: Int, fields: [String: String], actor: String) -> ConsentService.BulkItem {
    do {
        let identifiers = ["email", "phone", "externalId", "deviceId", "subjectId"].compactMap { name in
            fields[name].flatMap { $0.isEmpty ? nil : (name, $0) }
        }
        guard identifiers.count == 1, let (name, value) = identifiers.first else {
            throw StewardError.invalid("subject.missing", "give exactly one subject identifier", field: "subject")
        }
        let reference: SubjectReference
        if name == "subjectId" {
            guard let id = UUID(uuidString: value) else {
                throw StewardError.invalid("subject.invalid_id", "is not a subject id (UUID)", field: "subject.subjectId")
            }
            reference = .id(id)
        } else {
            do {
                reference = .identity(try NormalizedIdentity(kind: IdentityKind(parameterName: name)!, raw: value))
            } catch {
                throw error.prefixingField("subject")
            }
        }
        guard let purpose = fields["purpose"], !purpose.isEmpty else {
            throw StewardError.invalid("purpose.missing", "is required", field: "purpose")
        }
        guard let decision = fields["decision"].flatMap(ConsentDecision.init(rawValue:)) else {
            throw StewardError.invalid("decision.invalid", "must be one of granted, denied, withdrawn", field: "decision")
        }
        let methodText = fields["method"].flatMap { $0.isEmpty ? nil : $0 } ?? "import"
        guard let method = ConsentMethod(rawValue: methodText) else {
            throw StewardError.invalid("method.invalid", "is not a known method", field: "method")
        }
        var notice: PolicySet.NoticeKey?
        if let id = fields["noticeId"], !id.isEmpty, let version = fields["noticeVersion"], !version.isEmpty {
            notice = .init(id: id, version: version)
        }
        return .command(
            line: line,
            .init(
                subject: reference, purpose: purpose, decision: decision, method: method, notice: notice,
                source: fields["source"].flatMap { $0.isEmpty ? nil : $0 },
                consentString: fields["consentString"].flatMap { $0.isEmpty ? nil : $0 }, actor: actor))
    } catch let error as StewardError {
        return .rejected(line: line, error)
    } catch {
        return .rejected(line: line, .invalid("import.invalid_line", "the line could not be read"))
    }
}

func parseImportLines(_ data: Data, actor: String) -> [ConsentService.BulkItem] {
    let decoder = JSONDecoder()
    var items: [ConsentService.BulkItem] = []
    var number = 0
    for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        number += 1
        if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
        guard let parsed = try? decoder.decode(ImportLine.self, from: Data(line)) else {
            items.append(.rejected(line: number, .invalid("request.malformed_json", "the line is not a valid consent record")))
            continue
        }
        var fields: [String: String] = [:]
        fields["email"] = parsed.subject?.email
        fields["phone"] = parsed.subject?.phone
        fields["externalId"] = parsed.subject?.externalId
        fields["deviceId"] = parsed.subject?.deviceId
        fields["subjectId"] = parsed.subject?.subjectId
        fields["purpose"] = parsed.purpose
        fields["decision"] = parsed.decision
        fields["method"] = parsed.method
        fields["noticeId"] = parsed.notice?.id
        fields["noticeVersion"] = parsed.notice?.version
        fields["source"] = parsed.source
        fields["consentString"] = parsed.consentString
        items.append(importItem(line: number, fields: fields, actor: actor))
    }
    return items
}

/// RFC 4180 CSV: a header row, quoted fields with doubled quotes, CRLF or LF.
func parseCSV(_ data: Data, actor: String) throws -> [ConsentService.BulkItem] {
    guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("the CSV file is not UTF-8") }
    var rows: [(line: Int, fields: [String])] = []
    var field = ""
    var fields: [String] = []
    var inQuotes = false
    var line = 1
    var rowLine = 1
    var iterator = text.unicodeScalars.makeIterator()
    var pending: Unicode.Scalar? = nil
    func next() -> Unicode.Scalar? {
        if let scalar = pending {
            pending = nil
            return scalar
        }
        return iterator.next()
    }
    while let scalar = next() {
        if inQuotes {
            if scalar == "\"" {
                if let following = next() {
                    if following == "\"" { field.unicodeScalars.append("\"") } else {
                        inQuotes = false
                        pending = following
                    }
                } else {
                    inQuotes = false
                }
            } else {
                if scalar == "\n" { line += 1 }
                field.unicodeScalars.append(scalar)
            }
            continue
        }
        switch scalar {
        case "\"": inQuotes = true
        case ",":
            fields.append(field)
            field = ""
        case "\r": continue
        case "\n":
            fields.append(field)
            rows.append((rowLine, fields))
            fields = []
            field = ""
            line += 1
            rowLine = line
        default: field.unicodeScalars.append(scalar)
        }
    }
    if !field.isEmpty || !fields.isEmpty {
        fields.append(field)
        rows.append((rowLine, fields))
    }
    guard let header = rows.first else { return [] }
    let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
    let known: Set<String> = [
        "email", "phone", "externalId", "deviceId", "subjectId", "purpose", "decision", "method", "noticeId",
        "noticeVersion", "source", "consentString",
    ]
    if let unknown = names.first(where: { !known.contains($0) }) {
        throw ValidationError("unknown CSV column '\(unknown)'; known columns: \(known.sorted().joined(separator: ", "))")
    }
    return rows.dropFirst().compactMap { row in
        if row.fields.count == 1 && row.fields[0].isEmpty { return nil }
        guard row.fields.count == names.count else {
            return .rejected(
                line: row.line,
                .invalid("import.column_count", "has \(row.fields.count) fields; the header has \(names.count)"))
        }
        return importItem(line: row.line, fields: Dictionary(zip(names, row.fields), uniquingKeysWith: { a, _ in a }), actor: actor)
    }
}
