import Foundation
public import Logging
public import PostgresDriver
import PostgresNIO
public import StewardCore

/// Reads a PostgreSQL system of the customer store: one connection, opened for the work and closed
/// after it, in a read-only transaction. The schema read is the connection's current schema — the
/// URL's `search_path`, or `public`.
public struct PostgresConnector: Sendable {
    public let parts: PostgresURL.Parts
    let logger: Logger

    public init(url: String, logger: Logger = Logger(label: "steward.connector")) throws {
        self.parts = try PostgresURL.parts(from: url)
        self.logger = logger
    }

    /// Runs `body` on one connection inside `BEGIN READ ONLY`; the connection is closed after.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withWritableConnection { connection in
            try await connection.query("BEGIN READ ONLY", logger: logger)
            let result = try await body(connection)
            try await connection.query("ROLLBACK", logger: logger)
            return result
        }
    }

    /// Runs `body` on one connection, which is closed after; `body` manages its transactions.
    func withWritableConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try PostgresURL.connectionConfiguration(from: parts), id: 1, logger: logger)
        } catch let error as PostgresURL.Invalid {
            throw ConnectorError(error.description)
        } catch {
            throw ConnectorError("cannot connect to \(parts.place): \(Self.reason(error))")
        }
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            if error is ConnectorError { throw error }
            throw ConnectorError("cannot read \(parts.place): \(Self.reason(error))")
        }
    }

    /// A server's message (`relation … does not exist`, `password authentication failed …`) or the
    /// kind of failure — never the URL, which may hold a password.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return String(describing: type(of: error))
    }

    /// Tables, columns, primary and foreign keys of the current schema.
    public func introspect() async throws -> LiveSchema {
        try await withConnection { connection in try await Self.introspect(on: connection, logger: logger) }
    }

    /// The live schema of the connection's current schema, read on an open connection.
    static func introspect(on connection: PostgresConnection, logger: Logger) async throws -> LiveSchema {
        let columns = try await connection.query(
            """
            SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text = 'NO'
            FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
            ORDER BY c.table_name, c.ordinal_position
            """, logger: logger)
        var tables: [String: LiveSchema.Table] = [:]
        var order: [String] = []
        for try await (table, column, type, notNull) in columns.decode((String, String, String, Bool).self) {
            if tables[table] == nil {
                order.append(table)
                tables[table] = LiveSchema.Table(name: table, columns: [], primaryKey: [], foreignKeys: [])
            }
            tables[table]?.columns.append(LiveSchema.Column(name: column, type: type, notNull: notNull))
        }
        // Keys from the catalogue, which pairs each column of a composite key with its target.
        let keys = try await connection.query(
            """
            SELECT con.contype::text, c.relname::text, a.attname::text, coalesce(fc.relname::text, ''),
                   coalesce(fa.attname::text, ''), k.position::int
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL unnest(con.conkey, coalesce(con.confkey, con.conkey))
                WITH ORDINALITY AS k(col, fcol, position)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.col
            LEFT JOIN pg_class fc ON fc.oid = con.confrelid
            LEFT JOIN pg_attribute fa ON fa.attrelid = fc.oid AND fa.attnum = k.fcol
            WHERE n.nspname = current_schema() AND con.contype IN ('p', 'f')
            ORDER BY c.relname, con.conname, k.position
            """, logger: logger)
        for try await (kind, table, column, target, targetColumn, _) in keys.decode(
            (String, String, String, String, String, Int).self)
        {
            guard tables[table] != nil else { continue }
            if kind == "p" {
                tables[table]?.primaryKey.append(column)
            } else {
                tables[table]?.foreignKeys.append(
                    LiveSchema.ForeignKey(column: column, table: target, referencedColumn: targetColumn))
            }
        }
        return LiveSchema(tables: order.compactMap { tables[$0] })
    }
}

extension PostgresConnector {
    /// A name read from the catalogue, quoted for PostgreSQL (embedded quotes doubled).
    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// Up to `limit` rows: from a table the planner estimates at more than four times the limit,
    /// random pages (`TABLESAMPLE SYSTEM … REPEATABLE`), so the time is bounded by the sample, not
    /// the table; a smaller table is read from its start.
    public func sample(
        table: String, columns: [String], limit: Int, seed: UInt64, row: ([String?]) -> Void
    ) async throws {
        try await withConnection { connection in
            let estimate = try await connection.query(
                """
                SELECT coalesce(c.reltuples, -1)::float8 FROM pg_class c
                WHERE c.oid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(\(table)))
                """, logger: logger)
            var rows = -1.0
            for try await (value) in estimate.decode(Double.self) { rows = value }
            let select = columns.map { "\(Self.quoted($0))::text" }.joined(separator: ", ")
            var sql = "SELECT \(select) FROM \(Self.quoted(table))"
            if rows > Double(limit) * 4 {
                let percent = min(100, max(0.0001, 100 * Double(limit) * 4 / rows))
                sql += " TABLESAMPLE SYSTEM (\(String(format: "%.6f", percent))) REPEATABLE (\(seed % 1_000_000))"
            }
            sql += " LIMIT \(limit)"
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await values in result {
                let cells = values.makeRandomAccess()
                row(try (0..<columns.count).map { try cells[$0].decode(String?.self) })
            }
        }
    }
}
