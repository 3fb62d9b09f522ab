public import Foundation
public import StewardCore

/// `steward classify scan`: samples a bounded number of rows per table of a live system and
/// proposes a category for each column. Values are read, passed through the detectors and
/// dropped; only counts reach the report.
public enum SystemScan {
    public enum Scope: Sendable {
        /// Columns the map does not declare, and declared fields without a category or reference.
        case unclassified
        /// Every column, compared with the map's category where it declares one.
        case all
    }

    public struct Report: Sendable {
        public var system: String
        public var sampleSize: Int
        public var tables: Int
        public var proposals: [Proposal]
        /// `table.column` → the category the map declares, for the columns scanned.
        public var declared: [String: String]
        /// How long sampling took, in seconds.
        public var seconds: Double
        /// Email identity fields the map compares exactly (`match: exact`) whose sampled values are
        /// not all lower-case: a request, which looks up Steward's lower-cased address, misses the
        /// rows of those people.
        public var caseMismatches: [CaseMismatch] = []

        public var proposed: [Proposal] { proposals.filter(\.isProposed) }
        public var toReview: [Proposal] { proposals.filter { $0.category != nil && !$0.isProposed } }
        public var nothingFound: [Proposal] { proposals.filter { $0.category == nil } }
        /// Proposals whose category neither equals, refines nor generalises the map's.
        public var disagreements: [Proposal] {
            proposed.filter { proposal in
                declared["\(proposal.table).\(proposal.column)"].map { !Discovery.agree($0, proposal.category) }
                    ?? false
            }
        }
    }

    /// An exactly matched email field holding upper-case letters in `mixed` of `sampled` values.
    public struct CaseMismatch: Sendable, Hashable, CustomStringConvertible {
        public var table: String
        public var column: String
        public var sampled: Int
        public var mixed: Int

        public var description: String {
            "\(table).\(column): \(mixed) of \(sampled) sampled values hold upper-case letters, and the map compares it exactly (match: exact): a request looks the address up lower-cased and misses those rows; remove match: exact (case folded), or have the system store addresses lower-cased"
        }
    }

    public static let defaultSample = 1_000
    public static let maximumSample = 100_000

    /// Samples and proposes. `system` is the map's declaration (nil: no map, scan everything).
    public static func scan(
        _ connection: SystemConnection, system: DataSystem?, key: String, scope: Scope,
        sampleSize: Int = defaultSample, seed: UInt64 = 1, progress: ((String) -> Void)? = nil
    ) async throws -> Report {
        let started = ContinuousClock.now
        let schema = try await connection.introspect()
        var proposals: [Proposal] = []
        var declared: [String: String] = [:]
        var scannedTables = 0
        var caseMismatches: [CaseMismatch] = []
        for table in schema.tables {
            let collection = system?.collections.first { $0.name == table.name }
            // Whatever the scope: the exactly matched email fields, whose case decides what a request finds.
            let exact = (collection?.fields ?? []).filter { field in
                field.identity == .email && !field.matchesFoldingCase
                    && table.columns.contains { $0.name == field.name }
            }.map(\.name)
            if !exact.isEmpty {
                var counts = exact.map { _ in (sampled: 0, mixed: 0) }
                try await connection.sample(table: table.name, columns: exact, limit: sampleSize, seed: seed) { row in
                    for index in counts.indices {
                        guard let value = row[index] else { continue }
                        counts[index].sampled += 1
                        if value.utf8.contains(where: { (65...90).contains($0) }) { counts[index].mixed += 1 }
                    }
                }
                for (column, count) in zip(exact, counts) where count.mixed > 0 {
                    caseMismatches.append(
                        CaseMismatch(table: table.name, column: column, sampled: count.sampled, mixed: count.mixed))
                }
            }
            let columns = table.columns.map(\.name).filter { column in
                let field = collection?.field(column)
                if let category = field?.category { declared["\(table.name).\(column)"] = category }
                switch scope {
                case .all: return true
                case .unclassified: return field == nil || (field?.category == nil && field?.references == nil)
                }
            }
            guard !columns.isEmpty else { continue }
            scannedTables += 1
            progress?(table.name)
            var profiles = columns.map { ColumnProfile(table: table.name, column: $0) }
            try await connection.sample(table: table.name, columns: columns, limit: sampleSize, seed: seed) { row in
                for index in profiles.indices { profiles[index].observe(row[index]) }
            }
            proposals += profiles.map(Discovery.propose)
        }
        return Report(
            system: key, sampleSize: sampleSize, tables: scannedTables, proposals: proposals, declared: declared,
            seconds: Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000, caseMismatches: caseMismatches)
    }
}

extension SystemScan.Report {
    /// The proposal file: the systems YAML shape, ready to merge. Confidence and reasons are
    /// comments; no sampled value is ever written.
    public func yaml(generatedAt: Date) -> String {
        var lines = [
            "# Proposed by `steward classify scan \(system)` at \(Timestamp.iso8601(generatedAt)), from up to \(sampleSize) sampled rows per table.",
            "# Review each field, then merge it into systems/\(system).yaml: fields above the threshold (\(Discovery.threshold)) carry a",
            "# category; the others say what to look at. No sampled value is written here.",
            "version: 1",
            "key: \(system)",
            "collections:",
        ]
        var tables: [String] = []
        for proposal in proposals where !tables.contains(proposal.table) { tables.append(proposal.table) }
        for table in tables {
            lines.append("  - name: \(table)")
            lines.append("    fields:")
            for proposal in proposals where proposal.table == table {
                lines.append("      - name: \(proposal.column)")
                let why = proposal.reason.replacingOccurrences(of: "\n", with: " ")
                if let category = proposal.category, proposal.isProposed {
                    lines.append(
                        "        category: \(category)   # \(String(format: "%.2f", proposal.confidence)): \(why)")
                    if let identity = proposal.identity { lines.append("        identity: \(identity.rawValue)") }
                } else if let category = proposal.category {
                    lines.append(
                        "        # review: category \(category)? (\(String(format: "%.2f", proposal.confidence))): \(why)"
                    )
                } else {
                    lines.append("        # \(why): classify it yourself (system.operations if it identifies no one)")
                }
                if let map = declared["\(proposal.table).\(proposal.column)"], !Discovery.agree(map, proposal.category)
                {
                    lines.append("        # the map says \(map)")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The summary table, one line per scanned column.
    public var table: String {
        let rows = proposals.map { proposal -> [String] in
            let place = "\(proposal.table).\(proposal.column)"
            let verdict =
                proposal.isProposed ? (proposal.category ?? "") : proposal.category.map { "review: \($0)" } ?? "-"
            var note = proposal.reason
            if let map = declared[place] {
                note =
                    (map == proposal.category
                        ? "agrees with the map; "
                        : Discovery.agree(map, proposal.category)
                            ? "refines the map's \(map); " : "the map says \(map); ")
                    + note
            }
            return [place, verdict, String(format: "%.2f", proposal.confidence), note]
        }
        let header = ["COLUMN", "PROPOSAL", "CONF", "WHY"]
        let widths = (0..<3).map { index in ([header] + rows).map { $0[index].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            (0..<3).map { cells[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                + "  " + cells[3]
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
