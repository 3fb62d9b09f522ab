public import Foundation
public import StewardCore
import ZIPFoundation

/// The export package of an access or portability request (issue 18 item 6): one ZIP, built in
/// memory from the sealed rows when it is downloaded — no plaintext copy of it ever rests on disk.
///
/// - `manifest.json`: the request, the controller, and per system each collection's row count,
///   categories and files;
/// - `data.json`: every row, system → collection → rows (column → value or null);
/// - `<system>/<collection>.csv`: one CSV per collection (RFC 4180, the map's field order first);
/// - `README.txt`: what GDPR Art. 15 says the person is owed besides the data — purposes, categories,
///   recipients, transfers and their safeguards, retention, the source, and their rights.
public enum ExportPackage {
    public static let format = "steward-export/1"

    public static func zip(
        request: DataSubjectRequestRecord, rows: [SubjectRows], policy: PolicySet, generatedAt: Date
    ) throws -> Data {
        let map = policy.dataMap
        let sorted = rows.sorted { $0.system < $1.system }
        var files: [(String, Data)] = []
        var systems: [[String: Any]] = []
        var data: [String: Any] = [:]
        for system in sorted {
            let declared = map.system(system.system)
            var collections: [[String: Any]] = []
            var collected: [String: Any] = [:]
            for (name, list) in system.collections.sorted(by: { $0.key < $1.key }) {
                let mapped = declared?.collection(name)
                let columns = Self.columns(list, mapped: mapped)
                let file = "\(Self.safe(system.system))/\(Self.safe(name)).csv"
                files.append((file, Data(Self.csv(list, columns: columns).utf8)))
                let categories = (mapped?.fields ?? []).filter { columns.contains($0.name) }.compactMap(\.category)
                collections.append([
                    "name": name, "rows": list.count, "columns": columns,
                    "categories": Array(Set(categories)).sorted(), "file": file,
                ])
                collected[name] = list.map { row in row.mapValues { $0 ?? NSNull() as Any } }
            }
            systems.append([
                "key": system.system, "name": declared?.name ?? system.system, "collections": collections,
            ])
            data[system.system] = collected
        }
        var requestPart: [String: Any] = [
            "id": request.id.lowercasedString, "type": request.type.rawValue, "regime": request.regime,
            "receivedAt": Timestamp.iso8601(request.receivedAt),
        ]
        if let finished = request.finishedAt { requestPart["completedAt"] = Timestamp.iso8601(finished) }
        var manifest: [String: Any] = [
            "format": format, "generatedAt": Timestamp.iso8601(generatedAt), "request": requestPart,
            "systems": systems,
            "files": ["manifest.json", "data.json", "README.txt"] + files.map(\.0),
        ]
        if let controller = map.organisation?.controller {
            manifest["controller"] = ["name": controller.name, "contact": controller.contact]
        }
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let archive = try Archive(accessMode: .create)
        func add(_ path: String, _ bytes: Data) throws {
            try archive.addEntry(
                with: path, type: .file, uncompressedSize: Int64(bytes.count), modificationDate: generatedAt,
                compressionMethod: .deflate
            ) { position, size in
                bytes.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        try add("manifest.json", try JSONSerialization.data(withJSONObject: manifest, options: options))
        try add("data.json", try JSONSerialization.data(withJSONObject: data, options: options))
        try add("README.txt", Data(readme(request: request, rows: sorted, policy: policy).utf8))
        for (path, bytes) in files { try add(path, bytes) }
        guard let zipped = archive.data else { throw ExportError("the archive was not built in memory") }
        return zipped
    }

    /// The map's field order first, then any other column the rows hold, sorted.
    static func columns(_ rows: [[String: String?]], mapped: DataCollection?) -> [String] {
        let present = Set(rows.flatMap(\.keys))
        let ordered = (mapped?.fields.map(\.name) ?? []).filter { present.contains($0) }
        return ordered + present.subtracting(ordered).sorted()
    }

    /// RFC 4180, CRLF line ends; an empty field for null. A cell a spreadsheet would run as a
    /// formula (=, +, -, @, tab, CR first) is prefixed with an apostrophe; `data.json` keeps the
    /// exact values.
    static func csv(_ rows: [[String: String?]], columns: [String]) -> String {
        func cell(_ value: String) -> String {
            var value = value
            if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) {
                value = "'" + value
            }
            guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var lines = [columns.map(cell).joined(separator: ",")]
        for row in rows { lines.append(columns.map { cell((row[$0] ?? nil) ?? "") }.joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A path segment: the map's names are SQL names already; anything else is replaced.
    static func safe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" })
    }

    /// The Art. 15(1)–(2) information, from the policy: for the systems the data came from, the
    /// purposes and their legal basis, the categories, recipients, transfers, retention and source.
    static func readme(request: DataSubjectRequestRecord, rows: [SubjectRows], policy: PolicySet) -> String {
        let records = RecordsOfProcessing(policy: policy)
        let reached = Set(rows.map(\.system))
        let activities = records.activities.filter { !reached.isDisjoint(with: $0.systems) }
        var text = """
            YOUR PERSONAL DATA
            ==================

            This package answers your \(request.type == .portability ? "data portability" : "access") request \(request.id.lowercasedString) (\(request.regime.uppercased())), received \(Timestamp.iso8601(request.receivedAt)).

            Files
            -----
            manifest.json   what is in this package: systems, collections, row counts, categories
            data.json       all the data, by system and collection (structured, machine-readable)
            <system>/<collection>.csv   the same data, one table per file (a cell starting with
                            = + - or @ is prefixed with ' so a spreadsheet shows it as text)


            """
        if let controller = records.controller {
            text += "Who holds your data (the controller)\n------------------------------------\n"
            text += "\(controller.name), \(controller.contact)\(controller.address.map { ", \($0)" } ?? "")\n"
            if let dpo = records.dpo { text += "Data protection officer: \(dpo.name), \(dpo.contact)\n" }
            text += "\n"
        }
        text += "Why we process it (purposes and legal basis)\n--------------------------------------------\n"
        for activity in activities {
            text += "- \(activity.description) (\(activity.purpose)): \(activity.legalBasis)\n"
            if !activity.dataCategories.isEmpty {
                text += "  categories of data: \(activity.dataCategories.joined(separator: ", "))\n"
            }
            if !activity.recipients.isEmpty {
                text += "  recipients: \(activity.recipients.joined(separator: "; "))\n"
            }
            for transfer in activity.transfers {
                text +=
                    "  transfer outside the EEA: \(transfer.system) in \(transfer.country)"
                    + (transfer.safeguard.map { ", safeguard: \($0)" } ?? ", safeguard: not declared") + "\n"
            }
            if !activity.retention.isEmpty {
                text += "  how long it is kept: \(activity.retention.joined(separator: "; "))\n"
            }
        }
        if activities.isEmpty { text += "- none declared for the systems in this package\n" }
        text += """

            Where it came from
            ------------------
            From you, or from your use of our services, in the systems listed in manifest.json.
            No decision about you is made solely by automated means, including profiling, unless a
            purpose above says so.

            Your rights
            -----------
            You may ask us to correct (Art. 16) or erase (Art. 17) your data, to restrict (Art. 18)
            or object to (Art. 21) its processing, and to receive it to give to another service
            (Art. 20). You may withdraw consent at any time, without affecting what was done before.
            You may lodge a complaint with a supervisory authority, in particular in the member
            state where you live or work (Art. 77).

            """
        return text
    }
}

public struct ExportError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
