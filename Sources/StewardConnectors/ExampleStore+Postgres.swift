import Foundation
import NIOCore
import PostgresDriver
import PostgresNIO
import SQLiteDriver

extension ExampleStore {
    /// The PostgreSQL form of the two systems: one schema each, `crm` and `marketing`, in the
    /// database the URL names; reach them with `search_path=crm` or `search_path=marketing`.
    static let postgresSchema = """
        CREATE SCHEMA crm;
        CREATE TABLE crm.customers (
            id bigint PRIMARY KEY, email text NOT NULL UNIQUE, phone text, first_name text, last_name text,
            date_of_birth text, street text, postal_code text, city text, country text, created_at text NOT NULL);
        CREATE TABLE crm.orders (
            id bigint PRIMARY KEY, customer_id bigint REFERENCES crm.customers(id), placed_at text NOT NULL,
            total_cents bigint NOT NULL, shipping_address text, status text NOT NULL);
        CREATE INDEX orders_customer ON crm.orders(customer_id);
        CREATE TABLE crm.payments (
            id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES crm.orders(id), card_last4 text, iban text,
            amount_cents bigint NOT NULL, paid_at text NOT NULL);
        CREATE INDEX payments_order ON crm.payments(order_id);
        CREATE TABLE crm.support_tickets (
            id bigint PRIMARY KEY, customer_id bigint REFERENCES crm.customers(id), subject text, body text,
            opened_at text NOT NULL);
        CREATE INDEX support_tickets_customer ON crm.support_tickets(customer_id);
        CREATE SCHEMA marketing;
        CREATE TABLE marketing.subscriptions (
            id bigint PRIMARY KEY, email text NOT NULL, list_name text NOT NULL, subscribed_at text NOT NULL,
            source_ip text);
        CREATE INDEX subscriptions_email ON marketing.subscriptions(email);
        CREATE TABLE marketing.email_events (
            id bigint PRIMARY KEY, subscription_id bigint NOT NULL REFERENCES marketing.subscriptions(id),
            kind text NOT NULL, occurred_at text NOT NULL, user_agent text);
        CREATE INDEX email_events_subscription ON marketing.email_events(subscription_id);
        """

    /// Creates the two schemas in the database `url` names (which must not hold them yet) and fills
    /// them with `COPY`, all in one transaction: a failure part-way leaves the database as it was.
    public static func createPostgres(
        url: String, customers: Int, seed: UInt64 = 1, progress: ((Int) -> Void)? = nil
    ) async throws -> Summary {
        let connector = try PostgresConnector(url: url)
        return try await connector.withWritableConnection { connection in
            let logger = connector.logger
            let existing = try await connection.query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('crm', 'marketing')", logger: logger)
            for try await (name) in existing.decode(String.self) {
                throw ConnectorError(
                    "\(connector.parts.place) has a schema \(name) already; drop it (DROP SCHEMA \(name) CASCADE) or use another database"
                )
            }
            try await connection.query("BEGIN", logger: logger)
            for statement in postgresSchema.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: logger)
            }
            var generator = Generator(seed: seed)
            var start = 0
            while start < customers {
                let end = min(customers, start + batchSize)
                let batch = generator.batch(start..<end)
                for table in Table.allCases {
                    guard let rows = batch.rows[table], !rows.isEmpty else { continue }
                    // COPY quotes the table name as one identifier: the schema comes from the search path.
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(table.system)"), logger: logger)
                    try await connection.copyFrom(
                        table: table.rawValue, columns: table.columns, logger: logger
                    ) { writer in
                        var buffer = ByteBuffer()
                        for row in rows {
                            appendCopyLine(row, to: &buffer)
                            if buffer.readableBytes > 1 << 20 {
                                try await writer.write(buffer)
                                buffer.clear()
                            }
                        }
                        if buffer.readableBytes > 0 { try await writer.write(buffer) }
                    }
                }
                start = end
                progress?(end)
            }
            try await connection.query("COMMIT", logger: logger)
            return generator.summary
        }
    }

    /// One row in `COPY … FROM STDIN` text format: tab-separated, `\N` for NULL, backslash escapes.
    static func appendCopyLine(_ row: [SQLValue], to buffer: inout ByteBuffer) {
        for (index, value) in row.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            switch value {
            case .null: buffer.writeStaticString("\\N")
            case .int(let number): buffer.writeString(String(number))
            case .text(let text):
                for byte in text.utf8 {
                    switch byte {
                    case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                    case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                    case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                    case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                    default: buffer.writeInteger(byte)
                    }
                }
            case .blob, .uuid: preconditionFailure("the example store writes text and integers only")
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }
}
