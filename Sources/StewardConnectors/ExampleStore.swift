public import Foundation
public import SQLiteDriver
public import StewardCore

/// The example customer store (`steward demo init`): a CRM — customers, orders, payments, support
/// tickets, with real foreign keys — and an email marketing system keyed by email address, as two
/// SQLite databases. Deterministic: the same seed and size give the same rows, so tests and
/// benchmarks run on known data. All people are fictitious (example.com addresses, +1 555 numbers).
public enum ExampleStore {
    public static let crmFile = "crm.sqlite"
    public static let marketingFile = "marketing.sqlite"

    public struct Summary: Sendable, Equatable {
        public var customers = 0
        public var orders = 0
        public var payments = 0
        public var tickets = 0
        public var subscriptions = 0
        public var events = 0
    }

    static let crmSchema = """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, phone TEXT, first_name TEXT, last_name TEXT,
            date_of_birth TEXT, street TEXT, postal_code TEXT, city TEXT, country TEXT, created_at TEXT NOT NULL);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), placed_at TEXT NOT NULL,
            total_cents INTEGER NOT NULL, shipping_address TEXT, status TEXT NOT NULL);
        CREATE INDEX orders_customer ON orders(customer_id);
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), card_last4 TEXT, iban TEXT,
            amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL);
        CREATE INDEX payments_order ON payments(order_id);
        CREATE TABLE support_tickets (
            id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), subject TEXT, body TEXT,
            opened_at TEXT NOT NULL);
        CREATE INDEX support_tickets_customer ON support_tickets(customer_id);
        """

    static let marketingSchema = """
        CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY, email TEXT NOT NULL, list_name TEXT NOT NULL, subscribed_at TEXT NOT NULL,
            source_ip TEXT);
        CREATE INDEX subscriptions_email ON subscriptions(email);
        CREATE TABLE email_events (
            id INTEGER PRIMARY KEY, subscription_id INTEGER NOT NULL REFERENCES subscriptions(id), kind TEXT NOT NULL,
            occurred_at TEXT NOT NULL, user_agent TEXT);
        CREATE INDEX email_events_subscription ON email_events(subscription_id);
        """

    static let firstNames = [
        "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken", "Margaret", "Dennis",
        "Hedy", "Tim", "Katherine", "Linus", "Sophie", "Niklaus", "Shafi", "Leslie",
    ]
    static let lastNames = [
        "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Thompson",
        "Hamilton", "Ritchie", "Lamarr", "Berners", "Johnson", "Torvalds", "Wilson", "Wirth", "Goldwasser",
        "Lamport",
    ]
    static let cities = [
        ("Springfield", "US"), ("Riverton", "US"), ("Lakeside", "GB"), ("Hillview", "DE"), ("Fairport", "FR"),
        ("Brookfield", "NL"),
    ]
    static let subjects = [
        "Where is my order?", "Refund request", "Change of address", "Damaged item", "Invoice copy", "Account help",
    ]

    /// The example store's tables, in the order rows are written (parents first).
    public enum Table: String, CaseIterable, Sendable {
        case customers, orders, payments, supportTickets = "support_tickets", subscriptions
        case emailEvents = "email_events"

        public var system: String { self == .subscriptions || self == .emailEvents ? "marketing" : "crm" }
        var columns: [String] {
            switch self {
            case .customers:
                [
                    "id", "email", "phone", "first_name", "last_name", "date_of_birth", "street", "postal_code",
                    "city", "country", "created_at",
                ]
            case .orders: ["id", "customer_id", "placed_at", "total_cents", "shipping_address", "status"]
            case .payments: ["id", "order_id", "card_last4", "iban", "amount_cents", "paid_at"]
            case .supportTickets: ["id", "customer_id", "subject", "body", "opened_at"]
            case .subscriptions: ["id", "email", "list_name", "subscribed_at", "source_ip"]
            case .emailEvents: ["id", "subscription_id", "kind", "occurred_at", "user_agent"]
            }
        }
    }

    /// Rows of one batch of customers, per table.
    public struct Batch: Sendable {
        public var rows: [Table: [[SQLValue]]] = [:]
    }

    /// The deterministic row source both back ends write: the same seed gives the same rows.
    public struct Generator: Sendable {
        var random: SplitMix64
        public private(set) var summary = Summary()

        public init(seed: UInt64) { random = SplitMix64(seed: seed) }

        /// Customers `start ..< end` (0-based) with their orders, payments, tickets, subscriptions and events.
        public mutating func batch(_ range: Range<Int>) -> Batch {
            var batch = Batch()
            func add(_ table: Table, _ values: [SQLValue]) { batch.rows[table, default: []].append(values) }
            let base = 1_704_067_200  // 2024-01-01T00:00:00Z
            func time(_ seconds: Int) -> SQLValue {
                .text(Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(seconds))))
            }
            for index in range {
                let id = Int64(index + 1)
                let first = firstNames[Int(random.next() % UInt64(firstNames.count))]
                let last = lastNames[Int(random.next() % UInt64(lastNames.count))]
                let email = "\(first.lowercased()).\(last.lowercased()).\(id)@example.com"
                let (city, country) = cities[Int(random.next() % UInt64(cities.count))]
                let created = base + Int(random.next() % 31_536_000)
                let street = "\(1 + random.next() % 200) Example Street"
                add(
                    .customers,
                    [
                        .int(id), .text(email), .text("+1555" + padded(Int(id % 10_000_000), 7)),
                        .text(first), .text(last),
                        .text(
                            padded(1950 + Int(random.next() % 55), 4) + "-" + padded(1 + Int(random.next() % 12), 2)
                                + "-" + padded(1 + Int(random.next() % 28), 2)), .text(street),
                        .text(padded(Int(random.next() % 100_000), 5)), .text(city), .text(country), time(created),
                    ])
                summary.customers += 1
                for _ in 0..<Int(random.next() % 5) {
                    summary.orders += 1
                    let order = Int64(summary.orders)
                    let placed = created + Int(random.next() % 20_000_000)
                    let total = Int64(500 + random.next() % 50_000)
                    add(
                        .orders,
                        [
                            .int(order), .int(id), time(placed), .int(total), .text("\(street), \(city)"),
                            .text(random.next() % 10 == 0 ? "cancelled" : "delivered"),
                        ])
                    summary.payments += 1
                    let byCard = random.next() % 4 != 0
                    add(
                        .payments,
                        [
                            .int(Int64(summary.payments)), .int(order),
                            byCard ? .text(padded(Int(random.next() % 10_000), 4)) : .null,
                            byCard
                                ? .null
                                : .text(iban(country: "DE", bban: "370400440532" + padded(Int(id % 1_000_000), 6))),
                            .int(total), time(placed + 60),
                        ])
                }
                for _ in 0..<Int(random.next() % 3) where random.next() % 2 == 0 {
                    summary.tickets += 1
                    add(
                        .supportTickets,
                        [
                            .int(Int64(summary.tickets)), .int(id),
                            .text(subjects[Int(random.next() % UInt64(subjects.count))]),
                            .text("Hello, this is \(first) \(last). Please call me on the number on my account."),
                            time(created + Int(random.next() % 20_000_000)),
                        ])
                }
                if random.next() % 10 < 6 {
                    summary.subscriptions += 1
                    let subscription = Int64(summary.subscriptions)
                    add(
                        .subscriptions,
                        [
                            .int(subscription), .text(email),
                            .text(random.next() % 2 == 0 ? "newsletter" : "offers"), time(created + 30),
                            .text("198.51.100.\(random.next() % 254 + 1)"),
                        ])
                    for _ in 0..<Int(random.next() % 6) {
                        summary.events += 1
                        add(
                            .emailEvents,
                            [
                                .int(Int64(summary.events)), .int(subscription),
                                .text(["sent", "opened", "clicked"][Int(random.next() % 3)]),
                                time(created + 3_600 + Int(random.next() % 20_000_000)),
                                .text("Mozilla/5.0 (Example)"),
                            ])
                    }
                }
            }
            return batch
        }
    }

    static let batchSize = 10_000

    /// Creates the two databases in `directory` (which must not hold them yet) with `customers`
    /// customers; `progress` is called with the customers written so far.
    public static func createSQLite(
        in directory: String, customers: Int, seed: UInt64 = 1, progress: ((Int) -> Void)? = nil
    ) throws -> Summary {
        let crmPath = (directory as NSString).appendingPathComponent(crmFile)
        let marketingPath = (directory as NSString).appendingPathComponent(marketingFile)
        for path in [crmPath, marketingPath] where FileManager.default.fileExists(atPath: path) {
            throw ConnectorError("\(path) exists already; remove it or choose another directory")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let crm = try SQLiteConnection(path: crmPath, readOnly: false, role: .external)
        let marketing = try SQLiteConnection(path: marketingPath, readOnly: false, role: .external)
        try crm.execute(crmSchema)
        try marketing.execute(marketingSchema)
        var generator = Generator(seed: seed)
        var start = 0
        while start < customers {
            let end = min(customers, start + batchSize)
            let batch = generator.batch(start..<end)
            try crm.execute("BEGIN")
            try marketing.execute("BEGIN")
            for table in Table.allCases {
                let connection = table.system == "crm" ? crm : marketing
                let sql =
                    "INSERT INTO \(table.rawValue) (\(table.columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: table.columns.count).joined(separator: ", ")))"
                for row in batch.rows[table] ?? [] { _ = try connection.run(sql, row) }
            }
            try crm.execute("COMMIT")
            try marketing.execute("COMMIT")
            start = end
            progress?(end)
        }
        return generator.summary
    }
}

/// A valid IBAN (ISO 13616 check digits) for a country and a basic bank account number of digits
/// and upper-case letters.
public func iban(country: String, bban: String) -> String {
    var remainder = 0
    for character in (bban + country + "00").unicodeScalars {
        if let digit = Int(String(character)) {
            remainder = (remainder * 10 + digit) % 97
        } else {
            remainder = (remainder * 100 + Int(character.value) - 55) % 97
        }
    }
    return country + padded(98 - remainder, 2) + bban
}

/// `value` in decimal, left-padded with zeros to `width` digits.
func padded(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}
