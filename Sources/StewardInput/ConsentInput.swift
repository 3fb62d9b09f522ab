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
        subjectParameters + [
            "purpose", "decision", "method", "noticeId", "noticeVersion", "source", "consentString", "confirmedAt",
        ]

    /// Parses JSON lines; blank lines are skipped, line numbers count from 1.
    public static func jsonLines(_ data: Data, actor: String, defaultMethod: ConsentMethod = .api)
        -> [ConsentService.BulkItem]
    {
        var reader = JSONLinesReader(actor: actor, defaultMethod: defaultMethod)
        return reader.feed(data) + reader.finish()
    }

    /// One JSON line, parsed and validated.
    static func jsonLine(
        _ line: some Collection<UInt8>, number: Int, actor: String, defaultMethod: ConsentMethod, decoder: JSONDecoder
    ) -> ConsentService.BulkItem? {
        if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) {
            return nil
        }
        do {
            let body = try decoder.decode(RecordConsentBody.self, from: Data(line))
            return .command(line: number, try body.command(actor: actor, defaultMethod: defaultMethod, gpc: false))
        } catch let error as DecodingError {
            return .rejected(line: number, decodingProblem(error))
        } catch let error as StewardError {
            return .rejected(line: number, error)
        } catch {
            return .rejected(line: number, StewardError(.requestMalformedJson, "the line is not valid JSON"))
        }
    }

    /// JSON lines fed in chunks of any size (a file read piece by piece): each complete line becomes
    /// an item as soon as its newline arrives, so memory stays bounded by the chunk, not the file.
    public struct JSONLinesReader {
        let actor: String
        let defaultMethod: ConsentMethod
        var pending: [UInt8] = []
        var lineNumber = 0
        let decoder = JSONDecoder()

        public init(actor: String, defaultMethod: ConsentMethod = .api) {
            self.actor = actor
            self.defaultMethod = defaultMethod
        }

        public mutating func feed(_ chunk: some Collection<UInt8>) -> [ConsentService.BulkItem] {
            pending.append(contentsOf: chunk)
            var items: [ConsentService.BulkItem] = []
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                lineNumber += 1
                if let item = jsonLine(
                    pending[start..<newline], number: lineNumber, actor: actor, defaultMethod: defaultMethod,
                    decoder: decoder)
                {
                    items.append(item)
                }
                start = newline + 1
            }
            pending.removeFirst(start)
            return items
        }

        /// The last line, when the input does not end with a newline.
        public mutating func finish() -> [ConsentService.BulkItem] {
            defer { pending = [] }
            guard !pending.isEmpty else { return [] }
            lineNumber += 1
            return jsonLine(pending, number: lineNumber, actor: actor, defaultMethod: defaultMethod, decoder: decoder)
                .map { [$0] } ?? []
        }
    }

    /// Builds one record from named CSV fields (see `csvColumns`); empty fields count as absent.
    public static func record(
        fields: [String: String], line: Int, actor: String, defaultMethod: ConsentMethod = .import
    )
        -> ConsentService.BulkItem
    {
        func field(_ name: String) -> String? { fields[name].flatMap { $0.isEmpty ? nil : $0 } }
        var notice: NoticeBody?
        if let id = field("noticeId"), let version = field("noticeVersion") {
            notice = NoticeBody(id: id, version: version)
        }
        let body = RecordConsentBody(
            subject: SubjectBody(
                email: field("email"), phone: field("phone"), externalId: field("externalId"),
                deviceId: field("deviceId"), subjectId: field("subjectId")),
            purpose: field("purpose"), decision: field("decision"), method: field("method"), notice: notice,
            source: field("source"), proof: nil, consentString: field("consentString"),
            confirmedAt: field("confirmedAt"))
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
        var reader = CSVReader(actor: actor, defaultMethod: defaultMethod)
        return try reader.feed(data) + reader.finish()
    }

    /// RFC 4180 CSV fed in chunks of any size: quoted fields may hold commas, doubled quotes and
    /// newlines, and may span chunks. The first row is the header; an unknown column is an error for
    /// the whole input (thrown), every other problem rejects its row only. Tokenised on bytes: every
    /// separator is ASCII, so a UTF-8 field is never split inside a character.
    public struct CSVReader {
        let actor: String
        let defaultMethod: ConsentMethod
        var names: [String]?
        var field: [UInt8] = []
        var fields: [String] = []
        var rowValid = true
        /// Why the row is malformed, when it is (a stray or unclosed quote, an oversized field).
        var rowProblem: StewardError?
        var inQuotes = false
        /// A quote closed a quoted field; a second quote right after it is an escaped quote.
        var quoteJustClosed = false
        /// The current field was quoted and has closed: only a comma or the row's end may follow.
        var fieldClosed = false
        var line = 1
        var rowLine = 1
        /// Bytes of a UTF-8 byte-order mark matched at the very start of the input (skipped).
        var bomMatched = 0
        var started = false
        /// The longest field accepted, quoted or not: an unclosed quote, or a file with no line breaks,
        /// would otherwise be read into memory whole.
        static let maxFieldBytes = 64 << 10

        public init(actor: String, defaultMethod: ConsentMethod = .import) {
            self.actor = actor
            self.defaultMethod = defaultMethod
        }

        static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

        public mutating func feed(_ chunk: some Collection<UInt8>) throws(StewardError) -> [ConsentService.BulkItem] {
            var items: [ConsentService.BulkItem] = []
            for byte in chunk {
                if !started {
                    // A byte-order mark (spreadsheet exports write one) is not part of the first column's name.
                    if byte == Self.byteOrderMark[bomMatched] {
                        bomMatched += 1
                        if bomMatched == Self.byteOrderMark.count { started = true }
                        continue
                    }
                    started = true
                    field.append(contentsOf: Self.byteOrderMark.prefix(bomMatched))
                }
                if quoteJustClosed {
                    quoteJustClosed = false
                    if byte == UInt8(ascii: "\"") {
                        field.append(byte)
                        inQuotes = true
                        continue
                    }
                    fieldClosed = true
                }
                if inQuotes {
                    if byte == UInt8(ascii: "\"") {
                        inQuotes = false
                        quoteJustClosed = true
                    } else {
                        if byte == UInt8(ascii: "\n") { line += 1 }
                        if field.count < Self.maxFieldBytes {
                            field.append(byte)
                        } else if rowProblem == nil {
                            rowProblem = StewardError(
                                .importFieldTooLong,
                                "a quoted field is longer than \(Self.maxFieldBytes / 1024) KiB (an unclosed quote?)")
                        }
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""):
                    if field.isEmpty && !fieldClosed {
                        inQuotes = true
                    } else {
                        // RFC 4180: a quote opens a field or is doubled inside a quoted one; anywhere else
                        // the row is malformed, and guessing would shift its columns.
                        field.append(byte)
                        if rowProblem == nil {
                            rowProblem = StewardError(
                                .importStrayQuote, "has a quote inside an unquoted field or after a closing quote")
                        }
                    }
                case UInt8(ascii: ","): endField()
                case UInt8(ascii: "\r"): continue
                case UInt8(ascii: "\n"):
                    endField()
                    if let item = try endRow() { items.append(item) }
                    line += 1
                    rowLine = line
                default:
                    if fieldClosed && rowProblem == nil {
                        rowProblem = StewardError(.importStrayQuote, "has text after a closing quote")
                    }
                    if field.count < Self.maxFieldBytes {
                        field.append(byte)
                    } else if rowProblem == nil {
                        rowProblem = StewardError(
                            .importFieldTooLong, "a field is longer than \(Self.maxFieldBytes / 1024) KiB")
                    }
                }
            }
            return items
        }

        /// The last row, when the input does not end with a newline. A quoted field still open at the
        /// end of the input is reported on the line where it opened, with the lines it took in, rather
        /// than recorded or dropped in silence.
        public mutating func finish() throws(StewardError) -> [ConsentService.BulkItem] {
            if quoteJustClosed {
                quoteJustClosed = false
                fieldClosed = true
            }
            if inQuotes {
                // Lines after the opening one that the field took in (a final newline ends the last, not a new one).
                let swallowed = line - rowLine - (field.last == UInt8(ascii: "\n") ? 1 : 0)
                rowProblem = StewardError(
                    .importUnclosedQuote,
                    "opens a quoted field that never closes; the \(swallowed) line(s) after it were read into it and not imported"
                )
                inQuotes = false
            }
            guard !field.isEmpty || !fields.isEmpty || rowProblem != nil else { return [] }
            endField()
            return try endRow().map { [$0] } ?? []
        }

        mutating func endField() {
            if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                fields.append("")
                rowValid = false
            }
            field.removeAll(keepingCapacity: true)
            fieldClosed = false
        }

        mutating func endRow() throws(StewardError) -> ConsentService.BulkItem? {
            defer {
                fields.removeAll(keepingCapacity: true)
                rowValid = true
                rowProblem = nil
            }
            guard let names else {
                let header = fields.map { $0.trimmingCharacters(in: .whitespaces) }
                if !rowValid { throw StewardError(.importNotUtf8, "the CSV header is not UTF-8 text") }
                if let problem = rowProblem { throw StewardError(problem.code, "the CSV header " + problem.detail) }
                if let position = header.firstIndex(where: { !csvColumns.contains($0) }) {
                    // By position, never by content: a file without a header row has a person's data here.
                    throw StewardError(
                        .importUnknownColumn,
                        "column \(position + 1) of the first row is not a known column name (does the file start with a header row?); known columns: \(csvColumns.joined(separator: ", "))",
                        field: "header")
                }
                // Every name is a known column by now, so naming it echoes no input.
                var seen = Set<String>()
                if let repeated = header.first(where: { !seen.insert($0).inserted }) {
                    throw StewardError(
                        .importDuplicateColumn, "the CSV header names column '\(repeated)' twice", field: repeated)
                }
                self.names = header
                return nil
            }
            if let problem = rowProblem { return .rejected(line: rowLine, problem) }
            if fields.count == 1 && fields[0].isEmpty && rowValid { return nil }
            guard rowValid else {
                return .rejected(line: rowLine, StewardError(.importNotUtf8, "the row is not UTF-8 text"))
            }
            guard fields.count == names.count else {
                return .rejected(
                    line: rowLine,
                    StewardError(.importColumnCount, "has \(fields.count) fields; the header has \(names.count)"))
            }
            return record(
                fields: Dictionary(zip(names, fields), uniquingKeysWith: { a, _ in a }), line: rowLine, actor: actor,
                defaultMethod: defaultMethod)
        }
    }
}
