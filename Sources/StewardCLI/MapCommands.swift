import ArgumentParser
import Crypto
import Foundation
import PostgresDriver
import StewardConnectors
import StewardCore
import StewardPolicy

/// `steward map …`: the data map against the live systems.
struct MapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map", abstract: "Compare the data map with the live systems of the customer store.",
        subcommands: [Drift.self])

    struct Drift: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Report what a live system holds that its map does not declare, and what the map declares that is gone.",
            discussion: """
                Reads the system's schema only (tables, columns, primary and foreign keys), never its rows. \
                Exit status: 0 when the map and the system agree, 2 when they drift, 1 on an error.
                """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The system's key, as in Policies/systems/*.yaml.") var system: String

        func run() async throws {
            let directory = common.absolute(common.resolvedPolicies)
            let declared = try declaredSystem(system, policies: directory)
            let schema = try await SystemConnection.resolve(declared, policies: directory, environment: common.env)
                .introspect()
            let drift = schema.drift(from: declared)
            for finding in drift { print("\(finding.kind.rawValue)  \(finding)") }
            let columns = schema.tables.reduce(0) { $0 + $1.columns.count }
            if drift.isEmpty {
                print("\(system): the map matches the system (\(schema.tables.count) tables, \(columns) columns)")
            } else {
                print(
                    "\(system): \(drift.count) difference(s) between the map and the system (\(schema.tables.count) tables, \(columns) columns); update Policies/systems or the system"
                )
                throw ExitCode(2)
            }
        }
    }
}

/// The system `key` as the policy directory's map declares it; an unknown key is refused with the
/// keys that are known.
func declaredSystem(_ key: String, policies directory: String) throws -> DataSystem {
    let policy = try PolicyLoader.load(directory: directory) { SHA256.hash(data: $0).hexDigest }
    guard let declared = policy.dataMap.system(key) else {
        let known = policy.dataMap.systems.map(\.key).sorted().joined(separator: ", ")
        throw CLIError("no system '\(key)' in \(directory)/systems (known: \(known.isEmpty ? "none" : known))")
    }
    return declared
}

/// `steward classify …`: discovery.
struct ClassifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify", abstract: "Find personal data the map does not classify yet.",
        subcommands: [Scan.self])

    struct Scan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sample a live system and propose a category for each unclassified column.",
            discussion: """
                Reads a bounded sample of rows per table (random row ids on SQLite, random pages on \
                PostgreSQL) and proposes a category and a confidence from the column's name and value \
                detectors (email, phone, postal address and postcode, names, date of birth, IP address, card \
                numbers by Luhn, IBAN by mod 97, US SSN and UK NI numbers by their issued ranges, coordinates, \
                free text holding personal data). Sampled values are never printed, logged or written: only \
                counts reach the report. Writes the proposals in the systems YAML shape to --out.
                """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The system's key, as in Policies/systems/*.yaml.") var system: String
        @Flag(help: "Scan every column, not only those the map leaves unclassified, and compare with the map.")
        var all = false
        @Option(help: "Rows sampled per table (1 to 100000).") var sample = SystemScan.defaultSample
        @Option(help: "The proposal file to write (default: SYSTEM.proposed.yaml here; - for standard output).")
        var out: String?

        func validate() throws {
            guard (1...SystemScan.maximumSample).contains(sample) else {
                throw ValidationError("--sample must be 1 to \(SystemScan.maximumSample)")
            }
        }

        func run() async throws {
            let directory = common.absolute(common.resolvedPolicies)
            let declared = try declaredSystem(system, policies: directory)
            let connection = try SystemConnection.resolve(declared, policies: directory, environment: common.env)
            let report = try await SystemScan.scan(
                connection, system: declared, key: system, scope: all ? .all : .unclassified, sampleSize: sample
            ) { table in printErr("sampling \(table)") }
            let yaml = report.yaml(generatedAt: Date())
            let destination = out ?? "\(system).proposed.yaml"
            if destination != "-" {
                try writeOutput(yaml, to: common.absolute(destination))
            }
            for mismatch in report.caseMismatches { print("warning: \(system).\(mismatch)") }
            if report.proposals.isEmpty {
                print("\(system): every column is classified in the map; nothing to scan (use --all to check them)")
                return
            }
            print(report.table)
            if destination == "-" { print(yaml, terminator: "") }
            var summary =
                "\(system): \(report.proposals.count) column(s) in \(report.tables) table(s) sampled (up to \(sample) rows each) in \(String(format: "%.2f", report.seconds)) s: \(report.proposed.count) proposed, \(report.toReview.count) to review, \(report.nothingFound.count) with nothing personal"
            if all {
                summary += "; \(report.disagreements.count) disagree with the map"
            }
            summary += destination == "-" ? "" : "; proposals written to \(common.absolute(destination))"
            print(summary)
        }
    }
}

/// `steward demo …`: the example customer store.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Create the example customer store the walk-through and benchmarks use.",
        subcommands: [Init.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a deterministic example store: a CRM and an email marketing system.",
            discussion: """
                On SQLite (the default) it writes crm.sqlite and marketing.sqlite in --dir, which the shipped \
                Policies/systems/crm.yaml and marketing.yaml map: point them at it with the two exports this \
                command prints. With --postgres URL it creates the schemas crm and marketing in that database \
                and writes, in --dir/policies, a copy of the policy directory whose two systems are of kind \
                postgres and connect through files in --dir/policies/connections (the URL is never printed).
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "Directory for the SQLite files, or for the policies of a PostgreSQL store (created).")
        var dir = ".steward-demo"
        @Option(help: "Create the store in this PostgreSQL database instead (postgres://user@host:5432/database).")
        var postgres: String?
        @Option(help: "How many customers (1 to 10000000).") var customers = 1_000
        @Option(help: "Seed: the same seed and size give the same rows.") var seed: UInt64 = 1

        func validate() throws {
            guard (1...10_000_000).contains(customers) else {
                throw ValidationError("--customers must be 1 to 10000000")
            }
        }

        func run() async throws {
            let directory = common.absolute(dir)
            let started = ContinuousClock.now
            let progress: (Int) -> Void = { done in
                if done < customers { printErr("\(done) of \(customers) customers written") }
            }
            let summary: ExampleStore.Summary
            if let postgres {
                let policies = (directory as NSString).appendingPathComponent("policies")
                guard !FileManager.default.fileExists(atPath: policies) else {
                    throw CLIError("\(policies) exists already; remove it or choose another --dir")
                }
                summary = try await ExampleStore.createPostgres(
                    url: postgres, customers: customers, seed: seed, progress: progress)
                try writePostgresPolicies(to: policies, url: postgres)
            } else {
                summary = try ExampleStore.createSQLite(
                    in: directory, customers: customers, seed: seed, progress: progress)
            }
            let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000
            let place =
                postgres == nil
                ? directory : "the schemas crm and marketing of \(try PostgresURL.parts(from: postgres!).place)"
            print(
                "example store created in \(place) in \(String(format: "%.1f", seconds)) s: \(summary.customers) customers, \(summary.orders) orders, \(summary.payments) payments, \(summary.tickets) support tickets; \(summary.subscriptions) subscriptions, \(summary.events) email events"
            )
            if postgres != nil {
                let policies = (directory as NSString).appendingPathComponent("policies")
                print("its maps: \(policies)/systems; try: steward map drift crm --policies \(policies)")
            } else {
                print(
                    "export STEWARD_CRM_DATABASE=\((directory as NSString).appendingPathComponent(ExampleStore.crmFile))"
                )
                print(
                    "export STEWARD_MARKETING_DATABASE=\((directory as NSString).appendingPathComponent(ExampleStore.marketingFile))"
                )
            }
        }

        /// A copy of the policy directory whose crm and marketing systems are of kind postgres and
        /// connect through `connections/<system>.url` (readable by this user only).
        func writePostgresPolicies(to policies: String, url: String) throws {
            let source = common.absolute(common.resolvedPolicies)
            let manager = FileManager.default
            try manager.createDirectory(
                atPath: (policies as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true)
            try manager.copyItem(atPath: source, toPath: policies)
            let connections = (policies as NSString).appendingPathComponent("connections")
            try manager.createDirectory(atPath: connections, withIntermediateDirectories: true)
            for system in ["crm", "marketing"] {
                let file = (policies as NSString).appendingPathComponent("systems/\(system).yaml")
                guard var text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw CLIError("\(source)/systems/\(system).yaml is missing: the example store's maps come from it")
                }
                var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                guard let kind = lines.firstIndex(of: "kind: sqlite"),
                    let connection = lines.firstIndex(of: "connection:"), connection + 1 < lines.count
                else {
                    throw CLIError("\(file) does not declare `kind: sqlite` and a `connection:` block to rewrite")
                }
                lines[kind] = "kind: postgres"
                lines[connection + 1] = "  file: connections/\(system).url   # written by steward demo init --postgres"
                text = lines.joined(separator: "\n")
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                let separator = url.contains("?") ? "&" : "?"
                try (url + separator + "search_path=\(system)\n").write(
                    toFile: (connections as NSString).appendingPathComponent("\(system).url"), atomically: true,
                    encoding: .utf8)
            }
        }
    }
}
