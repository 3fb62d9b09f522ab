import Foundation
import PostgresDriver
import PostgresNIO
import SQLiteDriver
import StewardConnectors
import StewardCore
import StewardPolicy
import StewardTesting
import Testing

/// Drift (issue 17 item 4) on the example store (item 8), SQLite: `steward demo init` creates the
/// store the shipped maps describe, `steward map drift` finds no difference; a column added to it, a
/// declared one dropped and an undeclared table are each named, and a foreign key the map does not
/// declare is found.
@Suite struct MapDrift {
    @Test func driftNamesWhatTheSystemGainedAndLost() async throws {
        try await BuiltBinary.withDirectory("drift") { directory in
            let store = directory.appendingPathComponent("store").path
            let created = try await BuiltBinary.runFully(["demo", "init", "--dir", store, "--customers", "300"])
            #expect(created.status == 0, "\(created.errors)")
            #expect(created.output.contains("300 customers"), "\(created.output)")
            let environment = [
                "STEWARD_CRM_DATABASE": "\(store)/crm.sqlite",
                "STEWARD_MARKETING_DATABASE": "\(store)/marketing.sqlite",
            ]
            for system in ["crm", "marketing"] {
                let clean = try await BuiltBinary.runFully(["map", "drift", system], environment: environment)
                #expect(clean.status == 0, "\(system): \(clean.output) \(clean.errors)")
                #expect(clean.output.contains("\(system): the map matches the system"), "\(clean.output)")
            }
            // The same seed and size give the same store.
            let again = try await BuiltBinary.runFully([
                "demo", "init", "--dir", directory.appendingPathComponent("again").path, "--customers", "300",
            ])
            #expect(
                again.output.split(separator: "\n").first?.split(separator: ":").last
                    == created.output.split(separator: "\n").first?.split(separator: ":").last)

            let connection = try SQLiteConnection(path: "\(store)/crm.sqlite", readOnly: false, role: .external)
            try connection.execute(
                """
                ALTER TABLE customers ADD COLUMN loyalty_tier TEXT;
                ALTER TABLE support_tickets DROP COLUMN subject;
                CREATE TABLE gift_cards (id INTEGER PRIMARY KEY, code TEXT);
                """)
            let drifted = try await BuiltBinary.runFully(["map", "drift", "crm"], environment: environment)
            #expect(drifted.status == 2)
            #expect(
                drifted.output.split(separator: "\n").map(String.init) == [
                    "undeclared_column  column customers.loyalty_tier is not in the map: classify it",
                    "undeclared_table  table gift_cards is not in the map",
                    "missing_column  column support_tickets.subject is declared but the system has no such column",
                    "crm: 3 difference(s) between the map and the system (5 tables, 30 columns); update Policies/systems or the system",
                ], "\(drifted.output)")

            // A foreign key the map does not declare: the CRM's map without the orders → customers reference.
            let policy = try PolicyLoader.load(
                directory: BuiltBinary.packageRoot.appendingPathComponent("Policies").path
            ) { _ in "" }
            var crm = try #require(policy.dataMap.system("crm"))
            let orders = try #require(crm.collections.firstIndex { $0.name == "orders" })
            let link = try #require(crm.collections[orders].fields.firstIndex { $0.name == "customer_id" })
            crm.collections[orders].fields[link].references = nil
            let schema = try SQLiteConnector(path: "\(store)/crm.sqlite").introspect()
            #expect(
                schema.drift(from: crm).filter { $0.kind == .undeclaredForeignKey }.map(\.description) == [
                    "foreign key orders.customer_id → customers.id is not declared as a reference in the map"
                ])
            #expect(
                schema.table("payments")?.foreignKeys == [
                    .init(column: "order_id", table: "orders", referencedColumn: "id")
                ])
            #expect(schema.table("customers")?.primaryKey == ["id"])

            // An unset connection is a clear refusal, not a guess.
            let unset = try await BuiltBinary.runFully(["map", "drift", "crm"])
            #expect(unset.status == 1)
            #expect(unset.errors.contains("system 'crm' connects through STEWARD_CRM_DATABASE, which is not set"))
        }
    }
}

/// Drift on PostgreSQL: `steward demo init --postgres` creates the example store in a database of its
/// own, with maps of kind postgres; the same changes are named as on SQLite.
@Suite struct MapDriftPostgres {
    static var serverURL: String? {
        TestBackend.current == .postgres ? ProcessInfo.processInfo.environment["STEWARD_TEST_DATABASE_URL"] : nil
    }

    @Test(.enabled(if: serverURL != nil)) func driftNamesWhatThePostgresSystemGainedAndLost() async throws {
        let server = try #require(Self.serverURL)
        let database = "demo_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var components = try #require(URLComponents(string: server))
        components.path = "/" + database
        let url = try #require(components.string)
        let admin = PostgresClient(configuration: try PostgresURL.configuration(from: server))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"))
            do {
                try await check(url: url)
            } catch {
                _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(database) WITH (FORCE)"))
                throw error
            }
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(database) WITH (FORCE)"))
        }
    }

    func check(url: String) async throws {
        try await BuiltBinary.withDirectory("drift-pg") { directory in
            let created = try await BuiltBinary.runFully([
                "demo", "init", "--dir", directory.path, "--postgres", url, "--customers", "300",
            ])
            #expect(created.status == 0, "\(created.errors)")
            #expect(created.output.contains("300 customers"), "\(created.output)")
            #expect(!created.output.contains(url), "the URL is not printed")
            let policies = directory.appendingPathComponent("policies").path
            for system in ["crm", "marketing"] {
                let clean = try await BuiltBinary.runFully(["map", "drift", system, "--policies", policies])
                #expect(clean.status == 0, "\(system): \(clean.output) \(clean.errors)")
                #expect(clean.output.contains("\(system): the map matches the system"), "\(clean.output)")
            }
            // Discovery samples the PostgreSQL system too, and agrees with the map.
            let scan = try await BuiltBinary.runFully([
                "classify", "scan", "crm", "--all", "--policies", policies, "--out", "-",
            ])
            #expect(scan.status == 0, "\(scan.errors)")
            #expect(scan.output.contains("; 0 disagree with the map"), "\(scan.output)")
            let email = scan.output.split(separator: "\n").first { $0.hasPrefix("customers.email ") }
            #expect(email?.contains("agrees with the map; 100% of 300 sampled values are email addresses") == true)
            #expect(!scan.output.contains("@example.com"))

            // A second run into the same database is refused before it writes anything.
            let again = try await BuiltBinary.runFully([
                "demo", "init", "--dir", directory.appendingPathComponent("again").path, "--postgres", url,
            ])
            #expect(again.status == 1)
            #expect(again.errors.contains("has a schema crm already"), "\(again.errors)")

            let connector = try PostgresConnector(url: url + "?search_path=crm")
            let crm = PostgresClient(configuration: try PostgresURL.configuration(from: url + "?search_path=crm"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await crm.run() }
                defer { group.cancelAll() }
                for statement in [
                    "ALTER TABLE customers ADD COLUMN loyalty_tier text",
                    "ALTER TABLE support_tickets DROP COLUMN subject",
                    "CREATE TABLE gift_cards (id bigint PRIMARY KEY, code text)",
                ] {
                    try await crm.query(PostgresQuery(unsafeSQL: statement))
                }
            }
            let drifted = try await BuiltBinary.runFully(["map", "drift", "crm", "--policies", policies])
            #expect(drifted.status == 2)
            #expect(
                drifted.output.split(separator: "\n").map(String.init) == [
                    "undeclared_column  column customers.loyalty_tier is not in the map: classify it",
                    "undeclared_table  table gift_cards is not in the map",
                    "missing_column  column support_tickets.subject is declared but the system has no such column",
                    "crm: 3 difference(s) between the map and the system (5 tables, 30 columns); update Policies/systems or the system",
                ], "\(drifted.output)")

            let schema = try await connector.introspect()
            #expect(
                schema.table("payments")?.foreignKeys == [
                    .init(column: "order_id", table: "orders", referencedColumn: "id")
                ])
            #expect(schema.table("customers")?.primaryKey == ["id"])
            #expect(schema.table("customers")?.column("email")?.notNull == true)

            // An unreachable system is an error that names it, not a clean report.
            try "postgres://steward@127.0.0.1:1/nothing\n".write(
                toFile: "\(policies)/connections/marketing.url", atomically: true, encoding: .utf8)
            let unreachable = try await BuiltBinary.runFully(["map", "drift", "marketing", "--policies", policies])
            #expect(unreachable.status == 1)
            #expect(
                unreachable.errors.contains("cannot connect to the PostgreSQL database nothing on 127.0.0.1:1"),
                "\(unreachable.errors)")
        }
    }
}
