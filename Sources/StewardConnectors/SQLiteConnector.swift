public import Foundation
import SQLiteDriver
public import StewardCore

/// Reads a SQLite system of the customer store. Opened read-only, as it is: its journal mode and
/// settings are left alone, and nothing but the schema is read.
public struct SQLiteConnector: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// A name read from the database, quoted for SQLite (embedded quotes doubled).
    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// Tables, columns, primary and foreign keys.
    public func introspect() throws -> LiveSchema {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConnectorError("no SQLite database at \(path)")
        }
        let connection = try SQLiteConnection(path: path, readOnly: true, role: .external)
        return try Self.introspect(on: connection)
    }

    /// The live schema read on an open connection.
    static func introspect(on connection: SQLiteConnection) throws -> LiveSchema {
        let names = try connection.query(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ) { $0.text(0) }
        var tables: [LiveSchema.Table] = []
        for name in names {
            // table_info: cid, name, type, notnull, dflt_value, pk (1-based position in the key, 0 if none).
            let columns = try connection.query("PRAGMA table_info(\(Self.quoted(name)))") {
                (column: LiveSchema.Column(name: $0.text(1), type: $0.text(2), notNull: $0.int(3) != 0), pk: $0.int(5))
            }
            // foreign_key_list: id, seq, table, from, to, …; `to` is NULL for a key naming the parent's primary key.
            let keys = try connection.query("PRAGMA foreign_key_list(\(Self.quoted(name)))") {
                (table: $0.text(2), from: $0.text(3), to: $0.optionalText(4))
            }
            var foreignKeys: [LiveSchema.ForeignKey] = []
            for key in keys {
                var target = key.to
                if target == nil {
                    target = try connection.query("PRAGMA table_info(\(Self.quoted(key.table)))") {
                        (name: $0.text(1), pk: $0.int(5))
                    }.first { $0.pk == 1 }?.name
                }
                foreignKeys.append(
                    LiveSchema.ForeignKey(column: key.from, table: key.table, referencedColumn: target ?? "?"))
            }
            tables.append(
                LiveSchema.Table(
                    name: name, columns: columns.map(\.column),
                    primaryKey: columns.filter { $0.pk > 0 }.sorted { $0.pk < $1.pk }.map(\.column.name),
                    foreignKeys: foreignKeys))
        }
        return LiveSchema(tables: tables)
    }
}

extension SQLiteConnector {
    /// Up to `limit` rows: when the table's row ids run past twice the limit, `limit` random row
    /// ids looked up by key (time bounded by the sample, not the table); otherwise the first
    /// `limit` rows. A table without row ids is read from its start.
    public func sample(table: String, columns: [String], limit: Int, seed: UInt64, row: ([String?]) -> Void) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConnectorError("no SQLite database at \(path)")
        }
        let connection = try SQLiteConnection(path: path, readOnly: true, role: .external)
        let select = columns.map { "CAST(\(Self.quoted($0)) AS TEXT)" }.joined(separator: ", ")
        let from = Self.quoted(table)
        let count = Int32(columns.count)
        func read(_ values: SQLiteConnection.Row) {
            row((0..<count).map { values.optionalText($0) })
        }
        let highest =
            (try? connection.query("SELECT max(rowid) FROM \(from)") { $0.isNull(0) ? nil : $0.int(0) })?
            .first ?? nil
        guard let highest, highest > Int64(limit) * 2 else {
            _ = try connection.query("SELECT \(select) FROM \(from) LIMIT ?", [.int(Int64(limit))], read)
            return
        }
        var random = SplitMix64(seed: seed)
        var picked = Set<Int64>()
        while picked.count < limit { picked.insert(1 + Int64(random.next() % UInt64(highest))) }
        let ids = picked.sorted()
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(ids.count, start + 500)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            _ = try connection.query(
                "SELECT \(select) FROM \(from) WHERE rowid IN (\(marks))", chunk.map { .int($0) }, read)
            start += 500
        }
    }
}

/// A connector could not reach or read its system. The message names the system and place, never
/// a value or a secret.
public struct ConnectorError: CataloguedError, Sendable, CustomStringConvertible {
    public var description: String
    public var code: StewardError.Code
    public init(_ description: String, code: StewardError.Code = .connectorUnavailable) {
        self.description = description
        self.code = code
    }
}
