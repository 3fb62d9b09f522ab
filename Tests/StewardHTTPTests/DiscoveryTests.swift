import Foundation
import SQLiteDriver
import StewardConnectors
import StewardCore
import Testing

/// Discovery (issue 17 item 5) on a labelled synthetic store generated with a fixed seed: every
/// column carries the category a privacy engineer gives it, or none. Decoys are there on purpose:
/// order numbers that pass Luhn by chance, free text without personal data, tracking ids with the
/// length of phone numbers, SSN-shaped part codes outside the issued ranges, product names in a
/// column called `name`, names outside the detectors' dictionary.
@Suite struct DiscoveryPrecision {
    struct Column: Sendable {
        var name: String
        var label: String?
        var value: @Sendable (inout SplitMix64) -> String?
    }

    static func pick<T>(_ items: [T], _ random: inout SplitMix64) -> T {
        items[Int(random.next() % UInt64(items.count))]
    }
    static func digits(_ count: Int, _ random: inout SplitMix64) -> String {
        String((0..<count).map { _ in Character(String(random.next() % 10)) })
    }
    static func number(_ range: ClosedRange<Int>, _ random: inout SplitMix64) -> Int {
        range.lowerBound + Int(random.next() % UInt64(range.count))
    }

    static func luhnCompleted(_ payload: String) -> String {
        var sum = 0
        for (index, character) in payload.reversed().enumerated() {
            var digit = Int(String(character))!
            if index % 2 == 0 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        return payload + String((10 - sum % 10) % 10)
    }

    // Names the detectors' dictionary holds, and names it does not: the column's name must carry those.
    static let knownFirst = ["Ada", "Grace", "Alan", "Maria", "Wei", "Priya", "Omar", "Sofia", "James", "Yuki"]
    static let unknownFirst = [
        "Zephyrine", "Oluwaseun", "Bartholomew", "Ingrid", "Thandiwe", "Eero", "Saoirse", "Kwame",
    ]
    static let knownLast = ["Lovelace", "Hopper", "Turing", "Garcia", "Nguyen", "Patel", "Schmidt", "Tanaka"]
    static let unknownLast = ["Okonkwo", "Vasquez-Ruiz", "Lindqvist", "Achterberg", "Mbeki", "Szymanski", "Oyelaran"]
    static let towns = ["Springfield", "Lakeside", "Hillview", "Münster", "Aarhus", "Tromsø", "Galway", "Porto"]
    static let words = [
        "durable", "steel", "frame", "with", "a", "matte", "finish", "ideal", "for", "outdoor", "use", "and",
        "easy", "assembly", "includes", "two", "spare", "parts", "warranty", "of", "years", "lightweight",
    ]

    static let tables: [(name: String, columns: [Column])] = [
        (
            "accounts",
            [
                Column(name: "account_id", label: nil) { "\(number(1...999_999, &$0))" },
                Column(name: "contact", label: "user.contact.email") {
                    "\(pick(knownFirst + unknownFirst, &$0).lowercased()).\(digits(4, &$0))@\(pick(["example.com", "mail.example.org", "example.net"], &$0))"
                },
                Column(name: "mobile", label: "user.contact.phone_number") { "+44 7700 9\(digits(5, &$0))" },
                Column(name: "tel_home", label: "user.contact.phone_number") {
                    "(\(digits(3, &$0))) \(digits(3, &$0))-\(digits(4, &$0))"
                },
                Column(name: "given_name", label: "user.name.first") { pick(knownFirst + unknownFirst, &$0) },
                Column(name: "surname", label: "user.name.last") { pick(knownLast + unknownLast, &$0) },
                Column(name: "born", label: "user.demographic.date_of_birth") {
                    "\(number(1940...2005, &$0))-\(String(format: "%02d", number(1...12, &$0)))-\(String(format: "%02d", number(1...28, &$0)))"
                },
                Column(name: "zip", label: "user.contact.address.postal_code") {
                    $0.next() % 3 == 0 ? "\(digits(5, &$0))-\(digits(4, &$0))" : digits(5, &$0)
                },
                Column(name: "address_line1", label: "user.contact.address.street") {
                    "\(number(1...400, &$0))\(pick(["", "B", ""], &$0)) \(pick(["Baker", "Elm", "Mill", "Harbour"], &$0)) \(pick(["Street", "Road", "Ave", "Lane"], &$0))"
                },
                Column(name: "town", label: "user.contact.address.city") { pick(towns, &$0) },
                Column(name: "country_code", label: "user.contact.address.country") {
                    pick(["DE", "GB", "US", "FR", "NL", "DK"], &$0)
                },
                Column(name: "gender", label: "user.demographic.gender") {
                    pick(["female", "male", "non-binary"], &$0)
                },
                Column(name: "created", label: nil) {
                    "2024-\(String(format: "%02d", number(1...12, &$0)))-\(String(format: "%02d", number(1...28, &$0)))T10:00:00Z"
                },
                Column(name: "status", label: nil) { pick(["active", "closed", "suspended"], &$0) },
                Column(name: "plan", label: nil) { pick(["free", "pro", "team"], &$0) },
            ]
        ),
        (
            // Columns as they are found in the wild: mixed formats, placeholders, upper case.
            "legacy_contacts",
            [
                Column(name: "phone", label: "user.contact.phone_number") { random in
                    switch random.next() % 5 {
                    case 0: "n/a"
                    case 1: "030 \(digits(8, &random))"
                    case 2: "+1-202-555-\(digits(4, &random))"
                    default: "0\(digits(3, &random)) \(digits(6, &random))"
                    }
                },
                Column(name: "email_addr", label: "user.contact.email") { random in
                    random.next() % 10 == 0
                        ? "unknown" : "\(pick(unknownLast, &random).uppercased())@EXAMPLE.COM"
                },
                Column(name: "dob", label: "user.demographic.date_of_birth") {
                    "\(String(format: "%02d", number(1...12, &$0)))/\(String(format: "%02d", number(1...28, &$0)))/\(number(1950...2000, &$0))"
                },
                Column(name: "birth_year", label: "user.demographic.date_of_birth") { "\(number(1930...2008, &$0))" },
                Column(name: "postcode", label: "user.contact.address.postal_code") {
                    "\(pick(["SW1A", "EC2R", "M1", "B33", "CR2"], &$0)) \(number(1...9, &$0))\(pick(["AA", "BD", "XZ"], &$0))"
                },
                Column(name: "name_on_card", label: "user.name") {
                    "\(pick(knownFirst, &$0).uppercased()) \(pick(knownLast + unknownLast, &$0).uppercased())"
                },
                Column(name: "username", label: "user.account.username") {
                    "\(pick(knownFirst + unknownFirst, &$0).lowercased())\(pick(["_", ".", ""], &$0))\(number(1...999, &$0))"
                },
                Column(name: "geo_lat", label: "user.location.precise") { "\(number(40...59, &$0)).\(digits(5, &$0))" },
                // Rarely personal: one note in twenty-five names someone.
                Column(name: "remarks", label: "user.content.private") { random in
                    random.next() % 25 == 0
                        ? "Spoke to \(pick(knownFirst, &random)) \(pick(knownLast, &random)) who confirmed the new terms"
                        : "Contract renewed for another year with the standard terms and conditions"
                },
                Column(name: "source", label: nil) { pick(["import-2019", "webform", "trade fair"], &$0) },
                Column(name: "score", label: nil) { "0.\(digits(3, &$0))" },
            ]
        ),
        (
            "billing",
            [
                Column(name: "pan", label: "user.payment.card_number") { random in
                    let prefix = pick(["4", "51", "55", "2221"], &random)
                    let number = luhnCompleted(prefix + digits(15 - prefix.count, &random))
                    // Half written in groups of four, as on the card.
                    guard random.next() % 2 == 0 else { return number }
                    return stride(from: 0, to: 16, by: 4).map { offset in
                        let start = number.index(number.startIndex, offsetBy: offset)
                        return String(number[start..<number.index(start, offsetBy: 4)])
                    }.joined(separator: " ")
                },
                Column(name: "iban", label: "user.financial.bank_account") {
                    switch $0.next() % 3 {
                    case 0: StewardConnectors.iban(country: "DE", bban: digits(18, &$0))
                    case 1: StewardConnectors.iban(country: "GB", bban: "NWBK" + digits(14, &$0))
                    default: StewardConnectors.iban(country: "NL", bban: "ABNA" + digits(10, &$0))
                    }
                },
                Column(name: "ssn", label: "user.government_id.national_identification_number") {
                    let area = String(
                        format: "%03d", [number(1...665, &$0), number(667...899, &$0)][Int($0.next() % 2)])
                    return
                        "\(area)-\(String(format: "%02d", number(1...99, &$0)))-\(String(format: "%04d", number(1...9999, &$0)))"
                },
                Column(name: "ni_number", label: "user.government_id.national_identification_number") {
                    "\(pick(["AB", "CE", "JG", "PR", "WM"], &$0)) \(digits(2, &$0)) \(digits(2, &$0)) \(digits(2, &$0)) \(pick(["A", "B", "C", "D"], &$0))"
                },
                // Decoy: 16-digit order numbers; about one in ten passes Luhn by chance.
                Column(name: "order_number", label: nil) { "4" + digits(15, &$0) },
                Column(name: "amount", label: nil) { "\(number(1...9_999, &$0)).\(digits(2, &$0))" },
                Column(name: "invoice_ref", label: nil) { "INV-2024-\(digits(6, &$0))" },
                // Decoy: SSN-shaped part codes in the 9xx area the SSA never issues.
                Column(name: "part_code", label: nil) { "9\(digits(2, &$0))-\(digits(2, &$0))-\(digits(4, &$0))" },
            ]
        ),
        (
            "activity",
            [
                Column(name: "client_ip", label: "user.device.ip_address") {
                    $0.next() % 4 == 0
                        ? "2001:db8::\(String(number(1...65_535, &$0), radix: 16))"
                        : "203.0.113.\(number(1...254, &$0))"
                },
                Column(name: "drop_point", label: "user.location.precise") {
                    "\(number(40...59, &$0)).\(digits(4, &$0)),\(number(1...20, &$0)).\(digits(4, &$0))"
                },
                // Decoy: tracking ids with the length of phone numbers.
                Column(name: "tracking_id", label: nil) { "555" + digits(7, &$0) },
                Column(name: "shipment_number", label: nil) { digits(11, &$0) },
                Column(name: "page_views", label: nil) { "\(number(0...5_000, &$0))" },
                Column(name: "session_token", label: nil) { random in
                    String((0..<32).map { _ in Character(String(Int(random.next() % 16), radix: 16)) })
                },
                Column(name: "referrer", label: nil) { "https://www.example.com/\(pick(words, &$0))" },
            ]
        ),
        (
            "tickets",
            [
                Column(name: "body", label: "user.content.private") {
                    switch $0.next() % 4 {
                    case 0:
                        "Hi, I am \(pick(knownFirst, &$0)) \(pick(knownLast + unknownLast, &$0)) and my parcel never arrived"
                    case 1:
                        "Please send the invoice to \(pick(knownFirst, &$0).lowercased())@example.com as soon as you can"
                    case 2: "Call me back on +49 30 \(digits(8, &$0)) about the damaged item please"
                    default: "The item arrived broken and I would like a refund for the whole order"
                    }
                },
                // Decoy: free text with nothing personal in it.
                Column(name: "product_description", label: nil) { random in
                    (0..<Int(8 + random.next() % 8)).map { _ in pick(words, &random) }.joined(separator: " ")
                        .capitalized
                },
                Column(name: "agent_notes", label: "user.content.private") {
                    $0.next() % 3 == 0
                        ? "Customer \(pick(knownFirst, &$0)) \(pick(knownLast, &$0)) asked for a callback tomorrow"
                        : "Escalated to second line support after the standard checks failed"
                },
                Column(name: "customer", label: "user.name") {
                    "\(pick($0.next() % 5 == 0 ? unknownFirst : knownFirst, &$0)) \(pick(knownLast + unknownLast, &$0))"
                },
                // Decoy: a column called name that holds product names.
                Column(name: "product_name", label: nil) {
                    "\(pick(["Blue", "Large", "Classic", "Compact"], &$0)) \(pick(["Widget", "Lamp", "Chair", "Kettle"], &$0))"
                },
                Column(name: "subject", label: nil) { pick(["Refund", "Delivery", "Damaged item", "Invoice"], &$0) },
                Column(name: "sku", label: nil) { "SKU-\(digits(6, &$0))" },
            ]
        ),
    ]

    /// Writes the store: `rows` rows per table, some values NULL.
    static func create(at path: String, rows: Int, seed: UInt64) throws {
        let connection = try SQLiteConnection(path: path, readOnly: false, role: .external)
        var random = SplitMix64(seed: seed)
        for table in tables {
            let columns = table.columns.map(\.name)
            try connection.execute(
                "CREATE TABLE \(table.name) (id INTEGER PRIMARY KEY, \(columns.map { "\($0) TEXT" }.joined(separator: ", ")))"
            )
            try connection.execute("BEGIN")
            for _ in 0..<rows {
                let values: [SQLValue] = table.columns.map { column in
                    if random.next() % 20 == 0 { return .null }
                    return column.value(&random).map { .text($0) } ?? .null
                }
                _ = try connection.run(
                    "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))",
                    values)
            }
            try connection.execute("COMMIT")
        }
    }

    @Test func precisionAndRecallOnTheLabelledStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-discovery-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("labelled.sqlite").path
        try Self.create(at: path, rows: 2_000, seed: 17)

        let report = try await SystemScan.scan(
            .sqlite(SQLiteConnector(path: path)), system: nil, key: "labelled", scope: .all, sampleSize: 500)
        var labels: [String: String?] = [:]
        for table in Self.tables {
            labels["\(table.name).id"] = .some(nil)
            for column in table.columns { labels["\(table.name).\(column.name)"] = column.label }
        }
        var truePositives = 0
        var falsePositives: [String] = []
        var missed: [String] = []
        for proposal in report.proposals {
            let place = "\(proposal.table).\(proposal.column)"
            let label = try #require(labels[place], "unlabelled column \(place)")
            if proposal.isProposed {
                if Discovery.agree(label, proposal.category) {
                    truePositives += 1
                } else {
                    falsePositives.append("\(place): proposed \(proposal.category ?? "-"), labelled \(label ?? "none")")
                }
            }
            if let label, !(proposal.isProposed && Discovery.agree(label, proposal.category)) {
                missed.append(
                    "\(place): labelled \(label), \(proposal.category ?? "nothing") at \(proposal.confidence)")
            }
        }
        let personal = labels.values.compactMap { $0 }.count
        let proposed = report.proposed.count
        let precision = proposed == 0 ? 0 : Double(truePositives) / Double(proposed)
        let recall = Double(truePositives) / Double(personal)
        print(
            "discovery on the labelled store (seed 17, 2,000 rows per table, 500 sampled): \(labels.count) columns, \(personal) personal; \(proposed) proposed, \(truePositives) correct; precision \(String(format: "%.3f", precision)), recall \(String(format: "%.3f", recall))"
        )
        for line in falsePositives { print("  false positive: \(line)") }
        for line in missed { print("  missed: \(line)") }
        #expect(precision >= 0.95, "\(falsePositives)")
        #expect(recall >= 0.90, "\(missed)")

        // The decoys are each named: none is proposed.
        for decoy in [
            "billing.order_number", "billing.part_code", "activity.tracking_id", "tickets.product_description",
            "tickets.product_name",
        ] {
            #expect(report.proposed.allSatisfy { "\($0.table).\($0.column)" != decoy }, "\(decoy) was proposed")
        }
        // No sampled value reaches the report: compare with every value in the store.
        let text = report.table + report.yaml(generatedAt: Date())
        let connection = try SQLiteConnection(path: path, readOnly: true, role: .external)
        for table in Self.tables {
            for column in table.columns where column.label != nil {
                let values = try connection.query(
                    "SELECT \(column.name) FROM \(table.name) WHERE \(column.name) IS NOT NULL LIMIT 50"
                ) {
                    $0.text(0)
                }
                for value in values where value.count >= 5 {
                    #expect(!text.contains(value), "\(table.name).\(column.name): a sampled value is in the report")
                }
            }
        }
    }
}

/// `steward classify scan` on the example store: only what the map leaves unclassified is scanned,
/// the proposal file is in the systems shape, and no sampled value is printed or written. With
/// `--all`, the scan is compared with the map a person wrote — data the detectors were not written
/// against.
@Suite struct ClassifyScanCommand {
    /// An email field the map compares exactly is sampled whatever the scope: addresses stored with
    /// upper-case letters there are rows a request would miss, and the scan says so.
    @Test func anExactlyMatchedEmailColumnHoldingUpperCaseIsReported() async throws {
        try await BuiltBinary.withDirectory("classify-case") { directory in
            let store = directory.appendingPathComponent("store").path
            let created = try await BuiltBinary.runFully(["demo", "init", "--dir", store, "--customers", "2000"])
            #expect(created.status == 0, "\(created.errors)")
            let environment = ["STEWARD_MARKETING_DATABASE": "\(store)/marketing.sqlite"]
            let out = directory.appendingPathComponent("marketing.proposed.yaml").path
            let clean = try await BuiltBinary.runFully(
                ["classify", "scan", "marketing", "--out", out], environment: environment)
            #expect(clean.status == 0, "\(clean.errors)")
            #expect(!clean.output.contains("warning:"), "\(clean.output)")

            let connection = try SQLiteConnection(
                path: "\(store)/marketing.sqlite", readOnly: false, role: .external)
            try connection.execute(
                "UPDATE subscriptions SET email = upper(substr(email, 1, 1)) || substr(email, 2) WHERE id % 4 = 0")
            let total = try connection.query("SELECT count(*) FROM subscriptions") { $0.int(0) }.first ?? 0
            let scan = try await BuiltBinary.runFully(
                ["classify", "scan", "marketing", "--out", out, "--sample", "100000"], environment: environment)
            #expect(scan.status == 0, "\(scan.errors)")
            let warnings = scan.output.split(separator: "\n").filter { $0.hasPrefix("warning:") }
            #expect(
                warnings == [
                    "warning: marketing.subscriptions.email: \(total / 4) of \(total) sampled values hold upper-case letters, and the map compares it exactly (match: exact): a request looks the address up lower-cased and misses those rows; remove match: exact (case folded), or have the system store addresses lower-cased"
                ], "\(scan.output)")
        }
    }

    @Test func proposesForWhatTheMapLeavesOutAndAgreesWithTheMap() async throws {
        try await BuiltBinary.withDirectory("classify") { directory in
            let store = directory.appendingPathComponent("store").path
            let created = try await BuiltBinary.runFully(["demo", "init", "--dir", store, "--customers", "2000"])
            #expect(created.status == 0, "\(created.errors)")
            let environment = ["STEWARD_CRM_DATABASE": "\(store)/crm.sqlite"]

            let clean = try await BuiltBinary.runFully(
                ["classify", "scan", "crm", "--out", directory.appendingPathComponent("none.yaml").path],
                environment: environment)
            #expect(clean.status == 0, "\(clean.errors)")
            #expect(clean.output.contains("crm: every column is classified in the map"), "\(clean.output)")

            let connection = try SQLiteConnection(path: "\(store)/crm.sqlite", readOnly: false, role: .external)
            try connection.execute(
                """
                ALTER TABLE customers ADD COLUMN mobile TEXT;
                ALTER TABLE customers ADD COLUMN loyalty_tier TEXT;
                UPDATE customers SET mobile = '+44 7700 9' || substr('00000' || id, -5), loyalty_tier = 'gold';
                CREATE TABLE gift_cards (id INTEGER PRIMARY KEY, purchaser_email TEXT, code TEXT);
                INSERT INTO gift_cards (purchaser_email, code) SELECT email, 'GC-' || id FROM customers;
                """)
            let out = directory.appendingPathComponent("crm.proposed.yaml").path
            let scan = try await BuiltBinary.runFully(
                ["classify", "scan", "crm", "--out", out, "--sample", "300"], environment: environment)
            #expect(scan.status == 0, "\(scan.errors)")
            let yaml = try String(contentsOfFile: out, encoding: .utf8)
            #expect(yaml.contains("version: 1\nkey: crm\ncollections:\n"), "\(yaml)")
            #expect(
                yaml.contains(
                    "      - name: mobile\n        category: user.contact.phone_number   # 0.98: 100% of 300 sampled values are phone numbers; so is the column's name\n        identity: phone\n"
                ), "\(yaml)")
            #expect(yaml.contains("      - name: purchaser_email\n        category: user.contact.email"), "\(yaml)")
            #expect(yaml.contains("      - name: loyalty_tier\n        # nothing personal found in 300 sampled values"))
            #expect(!yaml.contains("name: first_name"), "declared fields are not scanned without --all")
            #expect(
                scan.output.contains(
                    "crm: 5 column(s) in 2 table(s) sampled (up to 300 rows each)"),
                "\(scan.output)")
            #expect(scan.output.contains("2 proposed, 0 to review, 3 with nothing personal"), "\(scan.output)")
            for text in [yaml, scan.output, scan.errors] {
                #expect(!text.contains("@example.com"), "no sampled email address is printed or written")
                #expect(!text.contains("+44 7700 9"), "no sampled phone number is printed or written")
            }

            // Against the map: every proposal agrees with (or refines) the category a person declared.
            let all = try await BuiltBinary.runFully(
                ["classify", "scan", "crm", "--all", "--out", "-"], environment: environment)
            #expect(all.status == 0, "\(all.errors)")
            #expect(all.output.contains("; 0 disagree with the map"), "\(all.output)")
            let rows = all.output.split(separator: "\n").filter {
                $0.contains("agrees with the map") || $0.contains("refines the map")
            }
            print("classify scan --all on the example CRM: \(rows.count) proposals agree with the map")
            #expect(rows.count >= 12, "\(all.output)")
        }
    }
}
