public import Foundation
public import StewardCore

/// The records of processing as a file: JSON for machines, CSV for spreadsheets, HTML for people
/// and regulators (Art. 30(3): in writing, including in electronic form).
extension RecordsOfProcessing {
    public enum Format: String, Sendable, CaseIterable {
        case json, csv, html

        public var contentType: String {
            switch self {
            case .json: "application/json"
            case .csv: "text/csv; charset=utf-8"
            case .html: "text/html; charset=utf-8"
            }
        }
    }

    public func rendered(_ format: Format, generatedAt: Date) -> String {
        switch format {
        case .json: json(generatedAt: generatedAt)
        case .csv: csv
        case .html: html(generatedAt: generatedAt)
        }
    }

    public func json(generatedAt: Date) -> String {
        struct Document: Encodable {
            var generatedAt: String
            var records: RecordsOfProcessing
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(Document(generatedAt: Timestamp.iso8601(generatedAt), records: self))) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static let csvColumns = [
        "purpose", "description", "legal_basis", "mechanism", "jurisdictions", "data_subjects", "data_categories",
        "special_categories", "systems", "recipients", "transfers", "retention", "security_measures",
        "controller", "dpo",
    ]

    /// One row per processing activity (purpose); lists joined with "; ". Cells are quoted per RFC
    /// 4180, and a cell a spreadsheet would read as a formula is prefixed with an apostrophe.
    public var csv: String {
        func cell(_ text: String) -> String {
            var text = text
            if let first = text.first, "=+-@\t\r".contains(first) { text = "'" + text }
            if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return text
        }
        func party(_ party: Organisation.Party?) -> String {
            party.map { "\($0.name) <\($0.contact)>" } ?? ""
        }
        var lines = [Self.csvColumns.joined(separator: ",")]
        for activity in activities {
            let transfers = activity.transfers.map {
                "\($0.system) → \($0.country) (\($0.safeguard ?? "no safeguard declared"))"
            }
            let row = [
                activity.purpose, activity.description, activity.legalBasis, activity.mechanism,
                activity.jurisdictions.joined(separator: "; "), activity.dataSubjects.joined(separator: "; "),
                activity.dataCategories.joined(separator: "; "), activity.specialCategories.joined(separator: "; "),
                activity.systems.joined(separator: "; "), activity.recipients.joined(separator: "; "),
                transfers.joined(separator: "; "), activity.retention.joined(separator: "; "),
                activity.securityMeasures.joined(separator: "; "), party(controller), party(dpo),
            ]
            lines.append(row.map(cell).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A self-contained XHTML page (well-formed XML, no script, no external resource).
    public func html(generatedAt: Date) -> String {
        func escape(_ text: String) -> String {
            var out = ""
            for character in text {
                switch character {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "'": out += "&#39;"
                default: out.append(character)
                }
            }
            return out
        }
        func list(_ items: [String]) -> String {
            items.isEmpty
                ? "<em>none declared</em>" : "<ul>" + items.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        }
        func party(_ label: String, _ party: Organisation.Party?) -> String {
            guard let party else { return "<tr><th>\(label)</th><td><em>not declared</em></td></tr>" }
            let address = party.address.map { "<br/>\(escape($0))" } ?? ""
            return "<tr><th>\(label)</th><td>\(escape(party.name))<br/>\(escape(party.contact))\(address)</td></tr>"
        }
        var body = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <title>Records of processing activities</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #111; }
            table { border-collapse: collapse; margin: 1em 0 2em; width: 100%; }
            th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
            th { background: #f2f2f2; width: 16em; }
            ul { margin: 0; padding-left: 1.2em; }
            .gap { color: #a00; }
            </style>
            </head>
            <body>
            <h1>Records of processing activities (GDPR Art. 30)</h1>
            <p>Generated by Steward at \(escape(Timestamp.iso8601(generatedAt))) from the policy \(escape(String(policyDigest.prefix(16)))).</p>
            <h2>Controller</h2>
            <table>
            \(party("Controller", controller))
            \(party("Data protection officer", dpo))
            \(party("Representative (Art. 27)", representative))
            </table>

            """
        body += "<h2>Processing activities</h2>\n"
        for activity in activities {
            let transfers = activity.transfers.map {
                "\($0.system): \($0.country) — \($0.safeguard ?? "no safeguard declared")"
            }
            body += """
                <h3 id="\(escape(activity.purpose))">\(escape(activity.purpose))</h3>
                <table>
                <tr><th>Purpose</th><td>\(escape(activity.description))</td></tr>
                <tr><th>Legal basis</th><td>\(escape(activity.legalBasis)) (\(escape(activity.mechanism)))</td></tr>
                <tr><th>Jurisdictions</th><td>\(list(activity.jurisdictions))</td></tr>
                <tr><th>Data subjects</th><td>\(list(activity.dataSubjects))</td></tr>
                <tr><th>Personal data</th><td>\(list(activity.dataCategories))</td></tr>
                <tr><th>Special or sensitive categories</th><td>\(list(activity.specialCategories))</td></tr>
                <tr><th>Systems</th><td>\(list(activity.systems))</td></tr>
                <tr><th>Recipients</th><td>\(list(activity.recipients))</td></tr>
                <tr><th>Transfers outside the EEA</th><td>\(list(transfers))</td></tr>
                <tr><th>Retention</th><td>\(list(activity.retention))</td></tr>
                <tr><th>Security measures</th><td>\(list(activity.securityMeasures))</td></tr>
                </table>

                """
        }
        body +=
            "<h2>Systems</h2>\n<table>\n<tr><th>System</th><td>Owner · location · processor · purposes · personal fields</td></tr>\n"
        for system in systems {
            let facts = [
                system.owner ?? "no owner", system.location ?? "location not declared",
                system.processor ?? "operated in house", system.purposes.joined(separator: ", "),
                "\(system.personalFields) of \(system.fields) fields personal",
            ]
            body +=
                "<tr><th>\(escape(system.name)) (\(escape(system.key)))</th><td>\(escape(facts.joined(separator: " · ")))</td></tr>\n"
        }
        body += "</table>\n<h2>Gaps</h2>\n"
        body +=
            gaps.isEmpty
            ? "<p>None: every item of Art. 30(1) is declared.</p>\n"
            : "<ul class=\"gap\">" + gaps.map { "<li>\(escape($0))</li>" }.joined() + "</ul>\n"
        body += "</body>\n</html>\n"
        return body
    }
}
