import Foundation
import Logging
import PostgresDriver
import PostgresNIO
import SQLiteDriver
import StewardConnectors
import StewardCore
import StewardPolicy
import StewardServices
import StewardTesting
import Testing

/// Data subject requests carried out against the example store (issue 18 items 4–5), on the
/// backend `Scripts/test.sh` selects: the customer store is SQLite files with Steward on SQLite, and
/// a PostgreSQL database of its own (schemas `crm` and `marketing`) with Steward on PostgreSQL.
/// Every row of every table is read before and after, so "nothing of anyone else" is checked
/// against the whole store, not a sample.
@Suite struct RequestExecution {
    static let policies = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Policies").path

    /// The example store on the test backend: each system's connection, and a clean-up.
    struct CustomerStore {
        var connections: [String: SystemConnection]
        /// Runs statements (`;`-separated) on a system, for backing up and restoring it.
        var execute: @Sendable (_ system: String, _ sql: String) async throws -> Void
    }

    static func withCustomerStore(
        customers: Int, _ body: @Sendable (CustomerStore) async throws -> Void
    ) async throws {
        switch TestBackend.current {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dsr-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            _ = try ExampleStore.createSQLite(in: directory.path, customers: customers)
            let files = ["crm": ExampleStore.crmFile, "marketing": ExampleStore.marketingFile]
            try await body(
                CustomerStore(
                    connections: [
                        "crm": .sqlite(
                            SQLiteConnector(path: directory.appendingPathComponent(ExampleStore.crmFile).path)),
                        "marketing": .sqlite(
                            SQLiteConnector(path: directory.appendingPathComponent(ExampleStore.marketingFile).path)),
                    ],
                    execute: { system, sql in
                        let connection = try SQLiteConnection(
                            path: directory.appendingPathComponent(files[system]!).path, readOnly: false,
                            role: .external)
                        try connection.execute(sql)
                    }))
        case .postgres:
            let server = try #require(ProcessInfo.processInfo.environment["STEWARD_TEST_DATABASE_URL"])
            let database = "dsr_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            var components = try #require(URLComponents(string: server))
            components.path = "/" + database
            let url = try #require(components.string)
            let admin = PostgresClient(configuration: try PostgresURL.configuration(from: server))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await admin.run() }
                defer { group.cancelAll() }
                try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"))
                do {
                    _ = try await ExampleStore.createPostgres(url: url, customers: customers)
                    try await body(
                        CustomerStore(
                            connections: [
                                "crm": .postgres(try PostgresConnector(url: url + "?search_path=crm")),
                                "marketing": .postgres(try PostgresConnector(url: url + "?search_path=marketing")),
                            ],
                            execute: { system, sql in
                                let connection = try await PostgresConnection.connect(
                                    configuration: try PostgresURL.connectionConfiguration(
                                        from: try PostgresURL.parts(from: url + "?search_path=\(system)")),
                                    id: 1, logger: Logger(label: "test"))
                                for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                                    try await connection.query(
                                        PostgresQuery(unsafeSQL: String(statement)), logger: Logger(label: "test"))
                                }
                                try await connection.close()
                            }))
                } catch {
                    _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(database) WITH (FORCE)"))
                    throw error
                }
                try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(database) WITH (FORCE)"))
            }
        }
    }

    /// Every row of every table of a system, by table, as text: the first column (`id`) → the row.
    static func dump(_ connection: SystemConnection) async throws -> [String: [String: [String: String?]]] {
        var tables: [String: [String: [String: String?]]] = [:]
        for table in try await connection.introspect().tables where !table.name.hasPrefix("bk_") {
            let columns = table.columns.map(\.name)
            var rows: [String: [String: String?]] = [:]
            try await connection.sample(table: table.name, columns: columns, limit: 10_000_000, seed: 1) { row in
                rows[row[0] ?? ""] = Dictionary(uniqueKeysWithValues: zip(columns, row))
            }
            tables[table.name] = rows
        }
        return tables
    }

    /// The example store's rows of one customer, found from the dump by their references.
    struct Subject {
        var email: String
        var rows: [String: Set<String>]
    }

    static func subject(crm: [String: [String: [String: String?]]], marketing: [String: [String: [String: String?]]])
        -> Subject?
    {
        // A customer with orders, payments, tickets and a subscription with events: the widest reach.
        for (id, customer) in crm["customers", default: [:]].sorted(by: { $0.key < $1.key }) {
            guard let email = customer["email"] ?? nil else { continue }
            let orders = Set(crm["orders", default: [:]].filter { $0.value["customer_id"] == id }.keys)
            let payments = Set(
                crm["payments", default: [:]].filter { orders.contains(($0.value["order_id"] ?? nil) ?? "") }.keys)
            let tickets = Set(crm["support_tickets", default: [:]].filter { $0.value["customer_id"] == id }.keys)
            let subscriptions = Set(marketing["subscriptions", default: [:]].filter { $0.value["email"] == email }.keys)
            let events = Set(
                marketing["email_events", default: [:]].filter {
                    subscriptions.contains(($0.value["subscription_id"] ?? nil) ?? "")
                }.keys)
            if !payments.isEmpty && !tickets.isEmpty && !events.isEmpty {
                return Subject(
                    email: email,
                    rows: [
                        "customers": [id], "orders": orders, "payments": payments, "support_tickets": tickets,
                        "subscriptions": subscriptions, "email_events": events,
                    ])
            }
        }
        return nil
    }

    static func execution(
        map: DataMap, store: CustomerStore, queue: JobQueue
    ) -> StewardServices.RequestExecution {
        StewardServices.RequestExecution(map: map, queue: queue) {
            system, type, identities, corrections, hash, beforeCommit in
            guard let declared = map.systems.first(where: { $0.key == system }),
                let connection = store.connections[system]
            else { throw ConnectorError("no system \(system)") }
            let reach: @Sendable (String) throws -> SystemConnection = { key in
                guard let other = store.connections[key] else { throw ConnectorError("no system \(key)") }
                return other
            }
            let outcome = try await RequestExecutor(
                system: declared, map: map, connection: connection, reach: reach
            ).execute(
                type, identities: identities, corrections: corrections, hash: hash, beforeCommit: beforeCommit)
            return (outcome.receipt, outcome.rows)
        }
    }

    /// Steward on the test backend with the shipped map over the example store, its service, both
    /// systems read whole before, and the subject of the widest reach.
    struct Setup: Sendable {
        var h: Harness
        var store: CustomerStore
        var service: RequestService
        var crm: [String: [String: [String: String?]]]
        var marketing: [String: [String: [String: String?]]]
        var subject: Subject
    }

    static func withExampleSubject(customers: Int, _ body: @Sendable (Setup) async throws -> Void) async throws {
        let policy = try PolicyLoader.load(directory: Self.policies) { _ in "digest" }
        try await Self.withCustomerStore(customers: customers) { store in
            try await withHarness { h in
                let queue = JobQueue(store: h.store, runtime: h.runtime)
                let service = RequestService(
                    store: h.store, crypto: h.crypto, runtime: h.runtime, regimes: policy.regimes,
                    execution: Self.execution(map: policy.dataMap, store: store, queue: queue))
                let crm = try await Self.dump(store.connections["crm"]!)
                let marketing = try await Self.dump(store.connections["marketing"]!)
                let subject = try #require(Self.subject(crm: crm, marketing: marketing))
                try await body(
                    Setup(h: h, store: store, service: service, crm: crm, marketing: marketing, subject: subject))
            }
        }
    }

    static func runJobs(_ h: Harness, service: RequestService) async throws {
        let runner = JobRunner(
            store: h.store, runtime: h.runtime, configuration: .init(pollInterval: .milliseconds(20)), untilIdle: true,
            logger: Logger(label: "test")
        ).registering(RequestTaskJob(service: service))
        try await runner.run()
    }

    @Test func accessReturnsTheSubjectsRowsAndErasureLeavesNoneOfTheirValues() async throws {
        let policy = try PolicyLoader.load(directory: Self.policies) { _ in "digest" }
        try await Self.withCustomerStore(customers: 200) { store in
            try await withHarness { h in
                let queue = JobQueue(store: h.store, runtime: h.runtime)
                let service = RequestService(
                    store: h.store, crypto: h.crypto, runtime: h.runtime, regimes: policy.regimes,
                    execution: Self.execution(map: policy.dataMap, store: store, queue: queue))
                let crm = try await Self.dump(store.connections["crm"]!)
                let marketing = try await Self.dump(store.connections["marketing"]!)
                let subject = try #require(Self.subject(crm: crm, marketing: marketing))
                let customerID = try #require(subject.rows["customers"]?.first)
                let email = try NormalizedIdentity(kind: .email, raw: subject.email)
                let externalID = try NormalizedIdentity(kind: .externalId, raw: customerID)

                // Access: every row of the subject in both systems, and nothing of anyone else.
                let access = try await service.submit(
                    regime: "gdpr", type: .access, identities: [email, externalID], verified: .preVerified,
                    actor: "key:shop")
                let started = try await service.apply(.approve, to: access.id, actor: "officer")
                #expect(started.status == .executing)
                try await Self.runJobs(h, service: service)
                let done = try await service.request(access.id)
                #expect(done.status == .completed)
                let tasks = try await h.store.read { try await $0.requestTasks(requestID: access.id) }
                #expect(tasks.map(\.system) == ["crm", "marketing"])
                #expect(tasks.allSatisfy { $0.state == .done })
                for task in tasks {
                    let rows = try #require(try service.rows(of: task, request: done))
                    let all = task.system == "crm" ? crm : marketing
                    for (collection, read) in rows.collections {
                        let ids = Set(read.map { ($0["id"] ?? nil) ?? "" })
                        #expect(ids == subject.rows[collection] ?? [], "\(task.system).\(collection)")
                        for row in read {
                            let id = (row["id"] ?? nil) ?? ""
                            #expect(row == all[collection]?[id], "\(collection) \(id) read as stored")
                        }
                    }
                    #expect(rows.collections.count == all.count, "every collection of \(task.system) reached")
                    #expect(
                        task.sealedRows.map { !String(decoding: $0, as: UTF8.self).contains(subject.email) } == true)
                }

                // A backup of both systems, taken before the erasure (restored below).
                let tables = [
                    "crm": ["customers", "orders", "payments", "support_tickets"],
                    "marketing": ["subscriptions", "email_events"],
                ]
                for (system, names) in tables {
                    try await store.execute(
                        system, names.map { "CREATE TABLE bk_\($0) AS SELECT * FROM \($0)" }.joined(separator: ";"))
                }
                let beforeErasure = h.clock.now

                // Erasure.
                let erasure = try await service.submit(
                    regime: "gdpr", type: .erasure, identities: [email], verified: .preVerified, actor: "key:shop")
                _ = try await service.apply(.approve, to: erasure.id, actor: "officer")
                try await Self.runJobs(h, service: service)
                #expect(try await service.request(erasure.id).status == .completed)
                let crmAfter = try await Self.dump(store.connections["crm"]!)
                let marketingAfter = try await Self.dump(store.connections["marketing"]!)
                // Nothing of anyone else changed, in any table.
                for (before, after) in [(crm, crmAfter), (marketing, marketingAfter)] {
                    for (table, rows) in before {
                        for (id, row) in rows where !(subject.rows[table]?.contains(id) ?? false) {
                            #expect(after[table]?[id] == row, "\(table) \(id) of another customer unchanged")
                        }
                    }
                }
                // The subject's rows: deleted, or changed so that no personal value is left except
                // what the map holds for tax law.
                for table in ["customers", "support_tickets"] {
                    #expect(subject.rows[table]!.allSatisfy { crmAfter[table]?[$0] == nil }, "\(table) deleted")
                }
                for table in ["subscriptions", "email_events"] {
                    #expect(subject.rows[table]!.allSatisfy { marketingAfter[table]?[$0] == nil }, "\(table) deleted")
                }
                for id in subject.rows["orders"]! {
                    let order = try #require(crmAfter["orders"]?[id], "orders are kept (tax law)")
                    #expect(order["customer_id"]! == nil && order["shipping_address"]! == nil)
                    #expect(order["total_cents"] == crm["orders"]?[id]?["total_cents"], "held for tax law")
                }
                for id in subject.rows["payments"]! {
                    let payment = try #require(crmAfter["payments"]?[id])
                    #expect(payment["iban"] == "*" && payment["card_last4"] == "*", "masked")
                    #expect(payment["amount_cents"] == crm["payments"]?[id]?["amount_cents"])
                }
                let text = "\(crmAfter)\(marketingAfter)"
                #expect(!text.contains(subject.email))

                // The receipts: counts that match the store, audited, no value in them.
                let receipts = try await h.store.read { try await $0.requestTasks(requestID: erasure.id) }
                    .map { try JSONDecoder().decode(SystemReceipt.self, from: Data(($0.receipt ?? "").utf8)) }
                let crmReceipt = try #require(receipts.first { $0.system == "crm" })
                #expect(crmReceipt.verified)
                let byName = Dictionary(uniqueKeysWithValues: crmReceipt.collections.map { ($0.collection, $0) })
                #expect(byName["customers"]?.deleted == 1)
                #expect(byName["support_tickets"]?.deleted == subject.rows["support_tickets"]!.count)
                #expect(byName["orders"]?.changed == subject.rows["orders"]!.count)
                #expect(byName["orders"]?.held["total_cents"]?.contains("tax law") == true)
                #expect(byName["payments"]?.changed == subject.rows["payments"]!.count)
                let marketingReceipt = try #require(receipts.first { $0.system == "marketing" })
                #expect(
                    marketingReceipt.collections.first { $0.collection == "email_events" }?.deleted
                        == subject.rows["email_events"]!.count)
                let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1000) }
                #expect(audit.filter { $0.draft.action == "request.erasure_receipt" }.count == 2)
                #expect(!"\(audit)".contains(subject.email))

                // Steward keeps no identity of the erased subject: one keyed hash per identity instead.
                #expect(try await h.store.read { try await $0.identities(subjectID: erasure.subjectID) }.isEmpty)
                let entries = try await h.store.read { try await $0.suppressions(since: beforeErasure) }
                #expect(
                    Set(entries.map(\.kind)) == [.email, .externalId]
                        && entries.allSatisfy { $0.requestID == erasure.id })

                // The systems restored from the backup: the subject is back; reapply erases them again.
                for (system, names) in tables {
                    try await store.execute(
                        system,
                        (names.reversed().map { "DELETE FROM \($0)" }
                            + names.map { "INSERT INTO \($0) SELECT * FROM bk_\($0)" })
                            .joined(separator: ";"))
                }
                #expect(try await Self.dump(store.connections["crm"]!) == crm, "restored as it was")
                for system in ["crm", "marketing"] {
                    let reapplied = try await service.reapplyErasures(
                        system: system, since: beforeErasure, actor: "officer")
                    #expect(reapplied.identities == 2 && reapplied.erasures == 1)
                    let receipt = try #require(reapplied.receipt)
                    #expect(receipt.verified)
                    let first = try #require(receipts.first { $0.system == system })
                    #expect(
                        receipt.collections.map { [$0.deleted, $0.changed] }
                            == first.collections.map { [$0.deleted, $0.changed] },
                        "\(system): the same rows erased again")
                }
                #expect(try await Self.dump(store.connections["crm"]!) == crmAfter, "erased again, exactly as before")
                #expect(try await Self.dump(store.connections["marketing"]!) == marketingAfter)
                let reapplyAudit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1000) }
                #expect(reapplyAudit.filter { $0.draft.action == "request.erasures_reapplied" }.count == 2)

                // Run again: nothing left to find, nothing changed.
                let again = try await service.execution!.execute(
                    "crm", .erasure, SubjectIdentities([.email: [email.value]]), [], { $0 }, { _ in })
                #expect(again.receipt.rowsAffected == 0 && again.receipt.rowsLocated == 0)

                // An external id the key's type cannot hold finds nothing and fails nothing.
                let other = try await service.execution!.execute(
                    "crm", .access, SubjectIdentities([.externalId: ["ada-7"]]), [], { $0 }, { _ in })
                #expect(other.receipt.rowsLocated == 0)
            }
        }
    }

    /// Rectification (Art. 16): the corrected values land in every mapped field they name, in both
    /// systems, for the subject's rows only; links, keys and fields kept as recorded are refused at
    /// intake; the values are sealed while the request is open and gone once it completes; nothing
    /// of them reaches a receipt or the audit.
    @Test func rectificationSetsTheCorrectedFieldsOfTheSubjectOnly() async throws {
        try await Self.withExampleSubject(customers: 200) { setup in
            let (h, store, service) = (setup.h, setup.store, setup.service)
            let (crm, marketing, subject) = (setup.crm, setup.marketing, setup.subject)
            let email = try NormalizedIdentity(kind: .email, raw: subject.email)
            func submit(_ type: RequestType = .rectification, _ corrections: [Correction]) async throws
                -> DataSubjectRequestRecord
            {
                try await service.submit(
                    regime: "gdpr", type: type, identities: [email], verified: .preVerified,
                    corrections: corrections, actor: "key:shop")
            }
            // Refused at intake, each naming the offending correction.
            let refusals: [(RequestType, [Correction], StewardError.Code, String)] = [
                (.rectification, [], .requestCorrectionsMissing, "corrections"),
                (
                    .access, [Correction(category: "user.name.last", value: "X")], .requestCorrectionsMissing,
                    "corrections"
                ),
                (
                    .rectification, [Correction(category: "user.nope", value: "X")], .requestCorrectionUnmapped,
                    "corrections[0].category"
                ),
                (
                    .rectification, [Correction(field: "crm.orders.customer_id", value: "7")],
                    .requestCorrectionUnmapped, "corrections[0].field"
                ),
                (
                    .rectification, [Correction(field: "crm.customers.id", value: "7")], .requestCorrectionUnmapped,
                    "corrections[0].field"
                ),
                (
                    .rectification, [Correction(field: "crm.orders.total_cents", value: "7")],
                    .requestCorrectionUnmapped, "corrections[0].field"
                ),
                (
                    .rectification, [Correction(field: "crm.customers.nope", value: "7")],
                    .requestCorrectionUnmapped,
                    "corrections[0].field"
                ),
                (
                    .rectification,
                    [Correction(category: "user.name.last", field: "crm.customers.last_name", value: "X")],
                    .requestCorrectionInvalid, "corrections[0]"
                ),
                (
                    .rectification, [Correction(category: "user.name.last", value: "a\u{7}b")],
                    .textControlCharacters,
                    "corrections[0].value"
                ),
                (
                    .rectification, [Correction(category: "user.name.last", value: "")], .requestCorrectionInvalid,
                    "corrections[0].value"
                ),
                (
                    .rectification,
                    [
                        Correction(category: "user.contact.email", value: "a@example.org"),
                        Correction(field: "marketing.subscriptions.email", value: "b@example.org"),
                    ],
                    .requestCorrectionConflict, "corrections[1]"
                ),
            ]
            for (type, corrections, code, field) in refusals {
                let error = await #expect(throws: StewardError.self) { try await submit(type, corrections) }
                #expect(error?.code == code && error?.field == field, "\(corrections)")
            }
            #expect(try await h.store.read { try await $0.dataSubjectRequests(RequestFilter()) }.isEmpty)

            // The person's email, city and last name, in both systems.
            let newEmail = "moved-\(UUID().uuidString.prefix(8).lowercased())@example.org"
            let corrections = [
                Correction(category: "user.contact.email", value: newEmail),
                Correction(category: "user.contact.address.city", value: "Neustadt an der Weinstraße"),
                Correction(field: "crm.customers.last_name", value: "Løvström-Ødegård"),
            ]
            let request = try await submit(.rectification, corrections)
            let sealed = try #require(
                try await h.store.read { try await $0.requestDetails(requestID: request.id) })
            #expect(!String(decoding: sealed, as: UTF8.self).contains("Neustadt"), "sealed at rest")
            let plan = try await service.plan(of: request, system: "crm")
            #expect(plan.effects.map(\.target.collection) == ["customers"])
            _ = try await service.apply(.approve, to: request.id, actor: "officer")
            try await Self.runJobs(h, service: service)
            let done = try await service.request(request.id)
            #expect(done.status == .completed)
            #expect(try await h.store.read { try await $0.requestDetails(requestID: request.id) } == nil)

            let crmAfter = try await Self.dump(store.connections["crm"]!)
            let marketingAfter = try await Self.dump(store.connections["marketing"]!)
            let customerID = try #require(subject.rows["customers"]?.first)
            var expected = try #require(crm["customers"]?[customerID])
            expected["email"] = newEmail
            expected["city"] = "Neustadt an der Weinstraße"
            expected["last_name"] = "Løvström-Ødegård"
            #expect(crmAfter["customers"]?[customerID] == expected)
            for id in subject.rows["subscriptions"]! {
                var row = try #require(marketing["subscriptions"]?[id])
                row["email"] = newEmail
                #expect(marketingAfter["subscriptions"]?[id] == row)
            }
            // Everything else as it was: other people, and the subject's other rows.
            for (before, after) in [(crm, crmAfter), (marketing, marketingAfter)] {
                for (table, rows) in before {
                    for (id, row) in rows
                    where !(table == "customers" && id == customerID)
                        && !(table == "subscriptions" && subject.rows[table]!.contains(id))
                    {
                        #expect(after[table]?[id] == row, "\(table) \(id) unchanged")
                    }
                }
            }

            // Receipts: which fields, how many rows, verified; no value.
            let tasks = try await h.store.read { try await $0.requestTasks(requestID: request.id) }
            #expect(tasks.map(\.system).sorted() == ["crm", "marketing"])
            let receipts = try tasks.map {
                try JSONDecoder().decode(SystemReceipt.self, from: Data(($0.receipt ?? "").utf8))
            }
            let customers = try #require(
                receipts.first { $0.system == "crm" }?.collections.first { $0.collection == "customers" })
            #expect(customers.changed == 1 && customers.located == 1)
            #expect(customers.fields == ["email": "corrected", "city": "corrected", "last_name": "corrected"])
            let subscriptions = try #require(
                receipts.first { $0.system == "marketing" }?.collections.first { $0.collection == "subscriptions" })
            #expect(subscriptions.changed == subject.rows["subscriptions"]!.count)
            #expect(receipts.allSatisfy { $0.verified })
            let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1000) }
            let text = "\(audit.map(\.draft))\(tasks.map(\.receipt))"
            #expect(!text.contains(newEmail) && !text.contains("Neustadt") && !text.contains("Løvström"))
            #expect(
                audit.contains { $0.draft.action == "request.received" && $0.draft.details["corrections"] != nil })

            // A second run of a system's work finds every value in place and changes nothing.
            let again = try await service.execution!.execute(
                "marketing", .rectification, SubjectIdentities([.email: [newEmail]]), corrections, { $0 }, { _ in })
            #expect(again.receipt.rowsAffected == 0 && again.receipt.verified)
        }
    }

    /// A system whose rows reference another system's (billing's invoices → the CRM's customers):
    /// its rows are found through the CRM's, located there read-only, and the CRM's erasure waits
    /// until billing's is done — else deleting the customer first would hide the invoices.
    @Test func referencesToAnotherSystemAreFollowedAndErasedChildrenFirst() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xsys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let policies = directory.appendingPathComponent("policies")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Self.policies), to: policies)
        try """
        version: 1
        key: billing
        name: Billing
        kind: sqlite
        connection:
          env: STEWARD_BILLING_DATABASE
        owner: finance
        purposes: [service.transactional_email]
        collections:
          - name: invoices
            primary_key: id
            fields:
              - name: id
                category: system.operations
              - name: customer_id
                references: crm.customers.id
                erasure: "null"
              - name: billing_name
                category: user.name
              - name: amount_cents
                category: user.behavior.purchase_history
                erasure: keep
                keep_reason: invoices are kept for 10 years (tax law)
        """.write(to: policies.appendingPathComponent("systems/billing.yaml"), atomically: true, encoding: .utf8)
        let policy = try PolicyLoader.load(directory: policies.path) { _ in "digest" }
        try await Self.withCustomerStore(customers: 100) { store in
            let crm = try await Self.dump(store.connections["crm"]!)
            let marketing = try await Self.dump(store.connections["marketing"]!)
            let subject = try #require(Self.subject(crm: crm, marketing: marketing))
            let customerID = try #require(subject.rows["customers"]?.first)
            // Two invoices of the subject, one of everyone else.
            let billingPath = directory.appendingPathComponent("billing.sqlite").path
            let billing = try SQLiteConnection(path: billingPath, readOnly: false, role: .external)
            try billing.execute(
                "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, billing_name TEXT, amount_cents INTEGER)"
            )
            var next = 1
            for id in crm["customers", default: [:]].keys.sorted() {
                for _ in 0..<(id == customerID ? 2 : 1) {
                    try billing.run(
                        "INSERT INTO invoices VALUES (?, ?, ?, ?)",
                        [.int(Int64(next)), .int(Int64(id)!), .text("Name \(id)"), .int(Int64(100 * next))])
                    next += 1
                }
            }
            var reachable = store.connections
            reachable["billing"] = .sqlite(SQLiteConnector(path: billingPath))
            let connections = reachable
            let all = RequestExecution.CustomerStore(connections: connections, execute: store.execute)
            let before = try await Self.dump(connections["billing"]!)
            let mine = Set(before["invoices", default: [:]].filter { $0.value["customer_id"] == customerID }.keys)
            #expect(mine.count == 2)
            try await withHarness { h in
                let queue = JobQueue(store: h.store, runtime: h.runtime)
                let service = RequestService(
                    store: h.store, crypto: h.crypto, runtime: h.runtime, regimes: policy.regimes,
                    execution: Self.execution(map: policy.dataMap, store: all, queue: queue))
                let email = try NormalizedIdentity(kind: .email, raw: subject.email)

                // Access: billing's invoices are found through the CRM's customer.
                let access = try await service.submit(
                    regime: "gdpr", type: .access, identities: [email], verified: .preVerified, actor: "key:shop")
                _ = try await service.apply(.approve, to: access.id, actor: "officer")
                try await Self.runJobs(h, service: service)
                let accessed = try await service.request(access.id)
                #expect(accessed.status == .completed)
                let billingTask = try #require(
                    try await h.store.read { try await $0.requestTasks(requestID: access.id) }.first {
                        $0.system == "billing"
                    })
                let rows = try #require(try service.rows(of: billingTask, request: accessed))
                #expect(Set(rows.collections["invoices"]?.map { ($0["id"] ?? nil) ?? "" } ?? []) == mine)
                let accessReceipt = try JSONDecoder().decode(
                    SystemReceipt.self, from: Data((billingTask.receipt ?? "").utf8))
                #expect(accessReceipt.crossSystemLookups.isEmpty, "followed, not reported")

                // Erasure: billing goes first (the CRM's job waits), its invoices are unlinked and
                // lose the name; the amounts stay; nobody else's invoice changes.
                let erasure = try await service.submit(
                    regime: "gdpr", type: .erasure, identities: [email], verified: .preVerified, actor: "key:shop")
                _ = try await service.apply(.approve, to: erasure.id, actor: "officer")
                // The CRM's job waits 2 seconds at a time. Once billing is done and the CRM's job waits,
                // the harness clock moves on 3 seconds, once (a clock running fast would expire leases
                // on a loaded machine and count attempts that are not the wait's).
                let runner = Task { try await Self.runJobs(h, service: service) }
                @Sendable func crmWaits() async throws -> Bool {
                    let tasks = try await h.store.read { try await $0.requestTasks(requestID: erasure.id) }
                    guard let crmID = tasks.first(where: { $0.system == "crm" })?.jobID,
                        let job = try await h.store.read({ try await $0.job(id: crmID) })
                    else { return false }
                    let billingDone = tasks.first(where: { $0.system == "billing" })?.state == .done
                    return billingDone && job.state == .queued
                        && (job.lastError?.contains("waiting for 'billing'") ?? false)
                }
                var waited = false
                for _ in 0..<800 {
                    waited = try await crmWaits()
                    if waited { break }
                    try await Task.sleep(for: .milliseconds(25))
                }
                #expect(waited, "the CRM's job waits for billing's")
                h.clock.advance(by: 3)
                try await runner.value
                #expect(try await service.request(erasure.id).status == .completed)
                let after = try await Self.dump(connections["billing"]!)
                for (id, row) in before["invoices", default: [:]] {
                    if mine.contains(id) {
                        #expect(after["invoices"]?[id]?["customer_id"] == .some(nil))
                        #expect(after["invoices"]?[id]?["billing_name"] == .some(nil))
                        #expect(after["invoices"]?[id]?["amount_cents"] == row["amount_cents"])
                    } else {
                        #expect(after["invoices"]?[id] == row, "invoice \(id) of another customer unchanged")
                    }
                }
                #expect(try await Self.dump(connections["crm"]!)["customers"]?[customerID] == nil)
                let tasks = try await h.store.read { try await $0.requestTasks(requestID: erasure.id) }
                let receipt = try JSONDecoder().decode(
                    SystemReceipt.self, from: Data((tasks.first { $0.system == "billing" }?.receipt ?? "").utf8))
                #expect(receipt.collections.first?.changed == 2 && receipt.verified)
                // The CRM's job waited for billing's: its receipt comes after, and waiting spent no attempt.
                let crmJobID = try #require(tasks.first { $0.system == "crm" }?.jobID)
                let crmJob = try #require(try await h.store.read { try await $0.job(id: crmJobID) })
                #expect(crmJob.state == .succeeded && crmJob.attempts == 1)
                #expect(crmJob.lastError?.contains("waiting for 'billing'") == true, "\(crmJob.lastError ?? "")")
                let receipts = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
                    .filter {
                        $0.draft.action == "request.erasure_receipt" && $0.draft.targetID == erasure.id.lowercasedString
                    }
                    .compactMap { $0.draft.details["system"] }
                #expect(receipts.firstIndex(of: "billing")! < receipts.firstIndex(of: "crm")!, "\(receipts)")
            }
        }
    }

    /// Identities given as SHA-256 (OpenDSR's sha256 format): Steward never sees the value, and the
    /// systems' rows are recognised by hashing their identity values as Steward normalises them —
    /// the same rows as by the plain address, and an erasure by hash leaves none of the subject's.
    @Test func identitiesGivenAsSHA256FindTheSameRows() async throws {
        try await Self.withExampleSubject(customers: 100) { setup in
            let (h, store, service) = (setup.h, setup.store, setup.service)
            let (crm, marketing, subject) = (setup.crm, setup.marketing, setup.subject)
            let normalised = try NormalizedIdentity(kind: .email, raw: subject.email).value
            let digest = h.crypto.secrets.digest(normalised).map { String(format: "%02x", $0) }.joined()
            let hashed = [HashedIdentity(kind: .email, sha256: digest.uppercased().lowercased())]

            let access = try await service.submit(
                regime: "gdpr", type: .access, identities: [], verified: .preVerified, hashedIdentities: hashed,
                actor: "key:shop")
            #expect(try await h.store.read { try await $0.identities(subjectID: access.subjectID) }.isEmpty)
            _ = try await service.apply(.approve, to: access.id, actor: "officer")
            try await Self.runJobs(h, service: service)
            let done = try await service.request(access.id)
            #expect(done.status == .completed)
            for task in try await h.store.read({ try await $0.requestTasks(requestID: access.id) }) {
                let rows = try #require(try service.rows(of: task, request: done))
                for (collection, read) in rows.collections {
                    #expect(
                        Set(read.map { ($0["id"] ?? nil) ?? "" }) == subject.rows[collection] ?? [],
                        "\(task.system).\(collection)")
                }
            }
            let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
            #expect(audit.contains { $0.draft.details["hashed_identities"] == "email" })
            #expect(!audit.contains { "\($0.draft)".contains(digest) })

            let erasure = try await service.submit(
                regime: "gdpr", type: .erasure, identities: [], verified: .preVerified, hashedIdentities: hashed,
                actor: "key:shop")
            _ = try await service.apply(.approve, to: erasure.id, actor: "officer")
            try await Self.runJobs(h, service: service)
            #expect(try await service.request(erasure.id).status == .completed)
            let after =
                "\(try await Self.dump(store.connections["crm"]!))\(try await Self.dump(store.connections["marketing"]!))"
            #expect(!after.contains(subject.email))
            #expect(try await h.store.read { try await $0.requestDetails(requestID: erasure.id) } == nil)
        }
    }

    /// A system that holds an address in another case (`Ada@Example.COM`) holds the same person as
    /// Steward's normalised `ada@example.com`: email fields are matched with case folded by default,
    /// so access finds those rows and erasure leaves none; a field the map marks `match: exact` (as
    /// the shipped example map does, its shop storing addresses lower-cased) is compared as stored.
    @Test func emailFieldsMatchTheSubjectWhateverTheCaseTheSystemStoredItIn() async throws {
        let policy = try PolicyLoader.load(directory: Self.policies) { _ in "digest" }
        try await Self.withCustomerStore(customers: 100) { store in
            try await withHarness { h in
                let crm = try await Self.dump(store.connections["crm"]!)
                let marketing = try await Self.dump(store.connections["marketing"]!)
                let subject = try #require(Self.subject(crm: crm, marketing: marketing))
                let at = try #require(subject.email.firstIndex(of: "@"))
                let stored =
                    subject.email[..<at].prefix(1).uppercased() + subject.email[..<at].dropFirst() + "@Example.COM"
                #expect(stored.lowercased() == subject.email && stored != subject.email)
                try await store.execute(
                    "crm", "UPDATE customers SET email = '\(stored)' WHERE email = '\(subject.email)'")
                try await store.execute(
                    "marketing", "UPDATE subscriptions SET email = '\(stored)' WHERE email = '\(subject.email)'")
                let email = try NormalizedIdentity(kind: .email, raw: subject.email)
                let queue = JobQueue(store: h.store, runtime: h.runtime)

                /// The request carried out with `map`, to its end.
                func carry(_ type: RequestType, _ map: DataMap) async throws -> (
                    RequestService, DataSubjectRequestRecord
                ) {
                    let service = RequestService(
                        store: h.store, crypto: h.crypto, runtime: h.runtime, regimes: policy.regimes,
                        execution: Self.execution(map: map, store: store, queue: queue))
                    let request = try await service.submit(
                        regime: "gdpr", type: type, identities: [email], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: request.id, actor: "officer")
                    try await Self.runJobs(h, service: service)
                    let done = try await service.request(request.id)
                    #expect(done.status == .completed)
                    return (service, done)
                }
                func access(_ map: DataMap) async throws -> [String: Set<String>] {
                    let (service, done) = try await carry(.access, map)
                    var found: [String: Set<String>] = [:]
                    for task in try await h.store.read({ try await $0.requestTasks(requestID: done.id) }) {
                        for (collection, rows) in try #require(try service.rows(of: task, request: done)).collections {
                            found[collection, default: []].formUnion(rows.map { ($0["id"] ?? nil) ?? "" })
                        }
                    }
                    return found.filter { !$0.value.isEmpty }
                }
                // The shipped map says `match: exact` for both addresses (its shop stores them lower-cased):
                // neither system's rows are found by the address in another case.
                let found = try await access(policy.dataMap)
                #expect(found.isEmpty, "\(found)")

                // The map's default for email fields: every row of the person, in both systems.
                var folded = policy.dataMap
                for (system, collection) in [("crm", "customers"), ("marketing", "subscriptions")] {
                    let s = try #require(folded.systems.firstIndex { $0.key == system })
                    let c = try #require(folded.systems[s].collections.firstIndex { $0.name == collection })
                    let f = try #require(folded.systems[s].collections[c].fields.firstIndex { $0.name == "email" })
                    #expect(folded.systems[s].collections[c].fields[f].match == .exact)
                    #expect(!folded.systems[s].collections[c].fields[f].matchesFoldingCase)
                    folded.systems[s].collections[c].fields[f].match = nil
                    #expect(folded.systems[s].collections[c].fields[f].matchesFoldingCase)
                }
                #expect(try await access(folded) == subject.rows)

                // Erasure with the default: nothing of the person is left, in any case.
                _ = try await carry(.erasure, folded)
                let after =
                    "\(try await Self.dump(store.connections["crm"]!))\(try await Self.dump(store.connections["marketing"]!))"
                let left = after.lowercased().contains(subject.email)
                #expect(!left, "the address is still in a system")
            }
        }
    }
}
