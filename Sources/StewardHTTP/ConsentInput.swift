public import Foundation
public import StewardCore
public import StewardServices

/// The one place a consent record's wire form becomes a `RecordCommand`: the API body, each line of
/// `POST /v1/consents/bulk`, and each JSONL line or CSV row of `steward consent import` go through
/// the same decoding and validation, so an import accepts exactly what the API accepts.
public enum ConsentInput {
    /// The parameter names that can name a subject, in the order they are documented.
    public static let subjectParameters = IdentityKind.allCases.map(\.parameterName) + ["subjectId"]

    /// The CSV columns `steward consent import` understands: the subject identifiers, then flat
    /// names for the rest of a record.
    public static let csvColumns: [String] =
        subjectParameters + ["purpose", "decision", "method", "noticeId", "noticeVersion", "source", "consentString"]

    /// Parses JSON lines; blank lines are skipped, line numbers count from 1.
    public static func jsonLines(_ data: Data, actor: String, defaultMethod: ConsentMethod = .api)
        -> [ConsentService.BulkItem]
    {
        var items: [ConsentService.BulkItem] = []
        let decoder = JSONDecoder()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) {
                continue
            }
            do {
                let body = try decoder.decode(RecordConsentBody.self, from: Data(line))
                items.append(.command(line: lineNumber, try body.command(actor: actor, defaultMethod: defaultMethod, gpc: false)))
            } catch let error as DecodingError {
                items.append(.rejected(line: lineNumber, decodingProblem(error)))
            } catch let error as StewardError {
                items.append(.rejected(line: lineNumber, error))
            } catch {
                items.append(.rejected(line: lineNumber, .invalid("request.malformed_json", "the line is not valid JSON")))
            }
        }
        return items
    }

    /// Builds one record from named CSV fields (see `csvColumns`); empty fields count as absent.
    public static func record(fields: [String: String], line: Int, actor: String, defaultMethod: ConsentMethod = .import)
        -> ConsentService.BulkItem
    {
        func field(_ name: String) -> String? { fields[name].flatMap { $0.isEmpty ? nil : $0 } }
        var notice: NoticeBody?
        if let id = field("noticeId"), let version = field("noticeVersion") { notice = NoticeBody(id: id, version: version) }
        let body = RecordConsentBody(
            subject: SubjectBody(
                email: field("email"), phone: field("phone"), externalId: field("externalId"),
                deviceId: field("deviceId"), subjectId: field("subjectId")),
            purpose: field("purpose"), decision: field("decision"), method: field("method"), notice: notice,
            source: field("source"), proof: nil, consentString: field("consentString"))
        do {
            return .command(line: line, try body.command(actor: actor, defaultMethod: defaultMethod, gpc: false))
        } catch {
            return .rejected(line: line, error)
        }
    }

    /// RFC 4180 CSV: a header row, quoted fields with doubled quotes, CRLF or LF.
    public static func csv(_ data: Data, actor: String, defaultMethod: ConsentMethod = .import) throws(StewardError)
        -> [ConsentService.BulkItem]
    {
    guard String(data: data, encoding: .utf8) != nil else {
        throw .invalid("import.not_utf8", "the CSV file is not UTF-8 text")
    }
    // Tokenised on bytes: every separator is ASCII, so a UTF-8 field is never split inside a character.
    var rows: [(line: Int, fields: [String])] = []
    var field: [UInt8] = []
    var fields: [String] = []
    var inQuotes = false
    var line = 1
    var rowLine = 1
    let bytes = [UInt8](data)
    var index = 0
    func endField() {
        fields.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
    }
    while index < bytes.count {
        let byte = bytes[index]
        index += 1
        if inQuotes {
            if byte == UInt8(ascii: "\"") {
                if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    field.append(byte)
                    index += 1
                } else {
                    inQuotes = false
                }
            } else {
                if byte == UInt8(ascii: "\n") { line += 1 }
                field.append(byte)
            }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inQuotes = true
        case UInt8(ascii: ","): endField()
        case UInt8(ascii: "\r"): continue
        case UInt8(ascii: "\n"):
            endField()
            rows.append((rowLine, fields))
            fields = []
            line += 1
            rowLine = line
        default: field.append(byte)
        }
    }
    if !field.isEmpty || !fields.isEmpty {
        endField()
        rows.append((rowLine, fields))
    }
    guard let header = rows.first else { return [] }
    let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
    if let unknown = names.first(where: { !csvColumns.contains($0) }) {
        throw .invalid(
            "import.unknown_column", "unknown CSV column '\(unknown)'; known columns: \(csvColumns.joined(separator: ", "))",
            field: unknown)
    }
    return rows.dropFirst().compactMap { row in
        if row.fields.count == 1 && row.fields[0].isEmpty { return nil }
        guard row.fields.count == names.count else {
            return .rejected(
                line: row.line,
                .invalid("import.column_count", "has \(row.fields.count) fields; the header has \(names.count)"))
        }
        return record(
            fields: Dictionary(zip(names, row.fields), uniquingKeysWith: { a, _ in a }), line: row.line, actor: actor,
            defaultMethod: defaultMethod)
    }
}
}
