import ArgumentParser
import Crypto
import Foundation
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
            let policy = try PolicyLoader.load(directory: directory) { SHA256.hash(data: $0).hexDigest }
            guard let declared = policy.dataMap.system(system) else {
                let known = policy.dataMap.systems.map(\.key).sorted().joined(separator: ", ")
                throw CLIError(
                    "no system '\(system)' in \(directory)/systems (known: \(known.isEmpty ? "none" : known))")
            }
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

/// Where a declared system lives, from its connection reference: an environment variable or a file
/// (relative to the policy directory) holding a path or a URL — or, for SQLite, the database file.
enum SystemConnection {
    case sqlite(path: String)

    static func resolve(_ system: DataSystem, policies: String, environment: [String: String]) throws
        -> SystemConnection
    {
        let target: String
        switch system.connection {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw CLIError("system '\(system.key)' connects through \(name), which is not set")
            }
            target = value
        case .file(let name):
            let path = name.hasPrefix("/") ? name : (policies as NSString).appendingPathComponent(name)
            if system.kind == .sqlite {
                target = path
            } else {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw CLIError("system '\(system.key)' connects through the file \(path), which cannot be read")
                }
                target = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        switch system.kind {
        case .sqlite: return .sqlite(path: target)
        case .postgres, .http:
            throw CLIError(
                "system '\(system.key)' is of kind \(system.kind.rawValue): its connector comes with the data subject request work; SQLite systems can be read now"
            )
        }
    }

    func introspect() async throws -> LiveSchema {
        switch self {
        case .sqlite(let path): try SQLiteConnector(path: path).introspect()
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
            abstract: "Create a deterministic example store: a CRM and an email marketing system, as SQLite files.",
            discussion: """
                The shipped Policies/systems/crm.yaml and marketing.yaml map it; point them at it with the \
                two exports this command prints.
                """)
        @Option(help: "Directory for crm.sqlite and marketing.sqlite (created; must not hold them yet).")
        var dir = ".steward-demo"
        @Option(help: "How many customers (1 to 10000000).") var customers = 1_000
        @Option(help: "Seed: the same seed and size give the same rows.") var seed: UInt64 = 1

        func validate() throws {
            guard (1...10_000_000).contains(customers) else {
                throw ValidationError("--customers must be 1 to 10000000")
            }
        }

        func run() async throws {
            let directory = CommonOptions().absolute(dir)
            let started = ContinuousClock.now
            let summary = try ExampleStore.createSQLite(in: directory, customers: customers, seed: seed) { done in
                if done < customers { printErr("\(done) of \(customers) customers written") }
            }
            let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000
            print(
                "example store created in \(directory) in \(String(format: "%.1f", seconds)) s: \(summary.customers) customers, \(summary.orders) orders, \(summary.payments) payments, \(summary.tickets) support tickets; \(summary.subscriptions) subscriptions, \(summary.events) email events"
            )
            print("export STEWARD_CRM_DATABASE=\((directory as NSString).appendingPathComponent(ExampleStore.crmFile))")
            print(
                "export STEWARD_MARKETING_DATABASE=\((directory as NSString).appendingPathComponent(ExampleStore.marketingFile))"
            )
        }
    }
}
