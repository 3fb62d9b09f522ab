import Foundation
import Logging
import PostgresNIO
import SQLiteDriver
import StewardCore
import Synchronization

/// A SQLite customer system: one connection for the request's work, with the system's foreign keys
/// enforced (so a reference the map and introspection both missed fails the transaction instead
/// of leaving a dangling row). Writes take the database's write lock at `BEGIN IMMEDIATE`.
final class SQLiteWorkSession: WorkSession, @unchecked Sendable {
    let connection: SQLiteConnection
    let path: String
    /// Keys per statement (SQLite's default limit of variables is 32,766).
    static let chunk = 500

    init(path: String, writing: Bool) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConnectorError("no SQLite database at \(path)")
        }
        self.path = path
        do {
            connection = try SQLiteConnection(path: path, readOnly: !writing, role: .external)
            if writing { try connection.execute("PRAGMA foreign_keys = ON") }
        } catch {
            throw ConnectorError("cannot open \(path): \(error)")
        }
    }

    /// SQLite's calls block (a busy wait for another writer's lock can last seconds): they run on
    /// this session's own thread, never on the cooperative pool, which must stay free for the work
    /// that holds the lock to reach its commit.
    private let queue = DispatchQueue(label: "steward.connector.sqlite")

    func mapped<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        do {
                            return try body()
                        } catch let error as SQLiteError {
                            // 19: SQLITE_CONSTRAINT and its extended codes (787: a foreign key).
                            if error.code & 0xff == 19 {
                                throw ConnectorError("\(self.path): \(error.message)", code: .requestConstraint)
                            }
                            throw ConnectorError("\(self.path): \(error.message)")
                        }
                    })
            }
        }
    }

    func begin(writing: Bool) async throws {
        try await mapped { try self.connection.execute(writing ? "BEGIN IMMEDIATE" : "BEGIN") }
    }
    func commit() async throws { try await mapped { try self.connection.execute("COMMIT") } }
    func rollback() async throws { try await mapped { try self.connection.execute("ROLLBACK") } }

    private var live: LiveSchema?

    func schema() async throws -> LiveSchema {
        if let live { return live }
        let schema = try await mapped { try SQLiteConnector.introspect(on: self.connection) }
        live = schema
        return schema
    }

    static func quoted(_ name: String) -> String { SQLiteConnector.quoted(name) }

    static func bind(_ cell: Cell) -> SQLValue {
        switch cell {
        case .null: .null
        case .int(let value): .int(value)
        case .text(let value): .text(value)
        case .blob(let value): .blob(value)
        }
    }

    static func cell(_ value: SQLValue) -> Cell {
        switch value {
        case .null: .null
        case .int(let value): .int(value)
        case .text(let value): .text(value)
        case .blob(let value): .blob(value)
        case .uuid(let value): .text(value.uuidString)
        }
    }

    func read(_ sql: String, _ values: [SQLValue], width: Int) async throws -> [[Cell]] {
        try await mapped {
            try self.connection.query(sql, values) { row in (0..<Int32(width)).map { Self.cell(row.value($0)) } }
        }
    }

    /// `("a", "b") IN (VALUES (?, ?), …)`, or `"a" IN (?, …)` for one column.
    static func keyMatch(_ keys: [String], count: Int) -> String {
        if keys.count == 1 {
            return quoted(keys[0]) + " IN (" + Array(repeating: "?", count: count).joined(separator: ", ") + ")"
        }
        let tuple = "(" + Array(repeating: "?", count: keys.count).joined(separator: ", ") + ")"
        return "(" + keys.map(quoted).joined(separator: ", ") + ") IN (VALUES "
            + Array(repeating: tuple, count: count).joined(separator: ", ") + ")"
    }

    func select(_ table: String, columns: [String], anyOf: [LocateCondition]) async throws -> [[Cell]] {
        var seen: Set<[Cell]> = []
        var rows: [[Cell]] = []
        let select = "SELECT " + columns.map(Self.quoted).joined(separator: ", ") + " FROM " + Self.quoted(table)
        for condition in anyOf {
            for start in stride(from: 0, to: condition.values.count, by: Self.chunk) {
                let chunk = condition.values[start..<min(condition.values.count, start + Self.chunk)]
                // Folded with SQLite's lower() on both sides (ASCII letters), so the two agree.
                let sql =
                    select + " WHERE "
                    + (condition.foldCase
                        ? "lower(" + Self.quoted(condition.column) + ") IN ("
                            + chunk.map { _ in "lower(?)" }
                            .joined(separator: ", ") + ")"
                        : Self.keyMatch([condition.column], count: chunk.count))
                for row in try await read(sql, chunk.map(Self.bind), width: columns.count)
                where seen.insert(row).inserted {
                    rows.append(row)
                }
            }
        }
        return rows
    }

    func scan(_ table: String, columns: [String], column: String, keep: @escaping @Sendable (String) -> Bool)
        async throws -> [[Cell]]
    {
        let sql =
            "SELECT " + (columns + [column]).map(Self.quoted).joined(separator: ", ") + " FROM " + Self.quoted(table)
            + " WHERE " + Self.quoted(column) + " IS NOT NULL"
        let width = Int32(columns.count)
        return try await mapped {
            try self.connection.query(sql) { row -> [Cell]? in
                keep(row.text(width)) ? (0..<width).map { Self.cell(row.value($0)) } : nil
            }.compactMap { $0 }
        }
    }

    func select(_ table: String, columns: [String], keys: [String], rows: [[Cell]]) async throws -> [[Cell]] {
        var result: [[Cell]] = []
        let select = "SELECT " + columns.map(Self.quoted).joined(separator: ", ") + " FROM " + Self.quoted(table)
        for start in stride(from: 0, to: rows.count, by: Self.chunk) {
            let chunk = rows[start..<min(rows.count, start + Self.chunk)]
            let sql = select + " WHERE " + Self.keyMatch(keys, count: chunk.count)
            result += try await read(sql, chunk.flatMap { $0.map(Self.bind) }, width: columns.count)
        }
        return result
    }

    func delete(_ table: String, keys: [String], rows: [[Cell]]) async throws -> Int {
        var deleted = 0
        for start in stride(from: 0, to: rows.count, by: Self.chunk) {
            let chunk = rows[start..<min(rows.count, start + Self.chunk)]
            let sql = "DELETE FROM " + Self.quoted(table) + " WHERE " + Self.keyMatch(keys, count: chunk.count)
            let values = chunk.flatMap { $0.map(Self.bind) }
            deleted += try await mapped { try self.connection.run(sql, values) }
        }
        return deleted
    }

    /// The fixed mask of a column's declared type, by SQLite's affinity rules: `*` for text (and
    /// columns without a type), 0 for numbers.
    func mask(_ table: String, _ column: String) -> Cell {
        let type = (live?.table(table)?.column(column)?.type ?? "").uppercased()
        if type.isEmpty || type.contains("CHAR") || type.contains("CLOB") || type.contains("TEXT")
            || type.contains("BLOB")
        {
            return .text("*")
        }
        return .int(0)
    }

    func update(_ table: String, keys: [String], rows: [[Cell]], set: [(column: String, to: Assignment)])
        async throws -> Int
    {
        _ = try await schema()
        var changed = 0
        for start in stride(from: 0, to: rows.count, by: Self.chunk) {
            let range = start..<min(rows.count, start + Self.chunk)
            let chunk = rows[range]
            var values: [SQLValue] = []
            var assignments: [String] = []
            for (column, to) in set {
                switch to {
                case .null: assignments.append(Self.quoted(column) + " = NULL")
                case .mask:
                    assignments.append(Self.quoted(column) + " = ?")
                    values.append(Self.bind(mask(table, column)))
                case .values(let cells):
                    // CASE (key) WHEN … THEN the row's value.
                    var sql = Self.quoted(column) + " = CASE"
                    for index in range {
                        sql +=
                            " WHEN (" + keys.map(Self.quoted).joined(separator: ", ") + ") = ("
                            + Array(repeating: "?", count: keys.count).joined(separator: ", ") + ") THEN ?"
                        values += rows[index].map(Self.bind)
                        values.append(Self.bind(cells[index]))
                    }
                    assignments.append(sql + " ELSE " + Self.quoted(column) + " END")
                }
            }
            let sql =
                "UPDATE " + Self.quoted(table) + " SET " + assignments.joined(separator: ", ") + " WHERE "
                + Self.keyMatch(keys, count: chunk.count)
            let all = values + chunk.flatMap { $0.map(Self.bind) }
            changed += try await mapped { try self.connection.run(sql, all) }
        }
        return changed
    }
}

/// A PostgreSQL customer system: one connection, one transaction (read committed; the located rows
/// are locked `FOR UPDATE` when writing). Keys travel as text arrays cast to the columns' types, so
/// one statement serves any number of rows and the indexes are used.
final class PostgresWorkSession: WorkSession, @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger
    private var writing = false
    private var types: [String: [String: String]] = [:]
    private var live: LiveSchema?

    /// Which database and schema this session reads (the schema cache's key; no credentials).
    let place: String

    init(connection: PostgresConnection, logger: Logger, place: String) {
        self.connection = connection
        self.logger = logger
        self.place = place
    }

    /// Live schemas and column types by place, read at most every 30 seconds: the catalogue
    /// queries cost more than a request's whole work. A schema changed meanwhile fails a statement
    /// (the transaction rolls back, the job retries), and is read again once the entry is stale.
    static let schemas = Mutex<
        [String: (read: ContinuousClock.Instant, schema: LiveSchema, types: [String: [String: String]])]
    >([:])
    static let schemaLifetime: Duration = .seconds(30)

    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            // Class 22 (data exception) messages quote the value that failed: only the state is kept.
            let message =
                state.hasPrefix("22")
                ? "a value does not fit its column's type (SQLSTATE \(state))" : PostgresConnector.reason(error)
            // Class 23 (integrity constraint violation) and 22 (data exception: a value, such as a
            // correction, that the column's type cannot hold): the system refused the change.
            if state.hasPrefix("23") || state.hasPrefix("22") {
                throw ConnectorError(message, code: .requestConstraint)
            }
            throw ConnectorError(message)
        }
    }

    func execute(_ sql: String, _ binds: PostgresBindings = PostgresBindings()) async throws -> [PostgresRow] {
        try await mapped {
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).collect()
        }
    }

    func begin(writing: Bool) async throws {
        self.writing = writing
        _ = try await execute(writing ? "BEGIN" : "BEGIN READ ONLY")
    }
    func commit() async throws { _ = try await execute("COMMIT") }
    func rollback() async throws { _ = try await execute("ROLLBACK") }

    func schema() async throws -> LiveSchema {
        if let live { return live }
        if let cached = Self.schemas.withLock({ $0[place] }), ContinuousClock.now - cached.read < Self.schemaLifetime {
            types = cached.types
            live = cached.schema
            return cached.schema
        }
        let schema = try await PostgresConnector.introspect(on: connection, logger: logger)
        let rows = try await execute(
            """
            SELECT c.relname::text, a.attname::text, format_type(a.atttypid, NULL)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
            """)
        for row in rows {
            let (table, column, type) = try row.decode((String, String, String).self)
            types[table, default: [:]][column] = type
        }
        live = schema
        let types = self.types
        Self.schemas.withLock { $0[place] = (ContinuousClock.now, schema, types) }
        return schema
    }

    static func quoted(_ name: String) -> String { PostgresConnector.quoted(name) }

    func type(_ table: String, _ column: String) -> String { types[table]?[column] ?? "text" }

    /// Whether a located value can be cast to the column's type: integers and UUIDs are checked,
    /// other types are left to the server.
    func fits(_ cell: Cell, _ type: String) -> Bool {
        guard let text = cell.text else { return false }
        switch type {
        case "smallint": return Int16(text) != nil
        case "integer": return Int32(text) != nil
        case "bigint": return Int64(text) != nil
        case "uuid": return UUID(uuidString: text) != nil
        default: return true
        }
    }

    /// `"col"::text`, for reading any column as text.
    func text(_ column: String) -> String { Self.quoted(column) + "::text" }

    func read(_ sql: String, _ binds: PostgresBindings, width: Int) async throws -> [[Cell]] {
        try await execute(sql, binds).map { row in
            let cells = row.makeRandomAccess()
            return try (0..<width).map { try cells[$0].decode(String?.self).map(Cell.text) ?? .null }
        }
    }

    /// `("a", "b") IN (SELECT * FROM unnest($1::text[]::T[], $2::text[]::U[]))`, binding one
    /// array per key column.
    func keyMatch(_ table: String, _ keys: [String], rows: [[Cell]], binds: inout PostgresBindings) -> String {
        var arrays: [String] = []
        for (index, key) in keys.enumerated() {
            binds.append(rows.map { $0[index].text ?? "" })
            arrays.append("$\(binds.count)::text[]::\(type(table, key))[]")
        }
        if keys.count == 1 { return Self.quoted(keys[0]) + " = ANY(" + arrays[0] + ")" }
        return "(" + keys.map(Self.quoted).joined(separator: ", ") + ") IN (SELECT * FROM unnest("
            + arrays.joined(separator: ", ") + "))"
    }

    func select(_ table: String, columns: [String], anyOf: [LocateCondition]) async throws -> [[Cell]] {
        _ = try await schema()
        var binds = PostgresBindings()
        // A value the column's type cannot hold (an external id "ada-7" against an integer key) matches
        // no row: it is left out, not cast (which would fail the whole lookup).
        let fitting = anyOf.map { condition in
            var fitting = condition
            fitting.values = condition.values.filter { fits($0, type(table, condition.column)) }
            return fitting
        }.filter { !$0.values.isEmpty }
        guard !fitting.isEmpty else { return [] }
        let conditions = fitting.map { condition in
            guard condition.foldCase else {
                return keyMatch(table, [condition.column], rows: condition.values.map { [$0] }, binds: &binds)
            }
            // Read as text and folded on both sides (PostgreSQL's lower() follows the collation).
            binds.append(condition.values.map { $0.text ?? "" })
            return "lower(" + text(condition.column)
                + ") IN (SELECT lower(v) FROM unnest($\(binds.count)::text[]) AS v)"
        }
        let sql =
            "SELECT " + columns.map(text).joined(separator: ", ") + " FROM " + Self.quoted(table) + " WHERE "
            + conditions.joined(separator: " OR ") + (writing ? " FOR UPDATE" : "")
        return try await read(sql, binds, width: columns.count)
    }

    func scan(_ table: String, columns: [String], column: String, keep: @escaping @Sendable (String) -> Bool)
        async throws -> [[Cell]]
    {
        let sql =
            "SELECT " + (columns + [column]).map(text).joined(separator: ", ") + " FROM " + Self.quoted(table)
            + " WHERE " + Self.quoted(column) + " IS NOT NULL"
        return try await mapped {
            var kept: [[Cell]] = []
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await row in rows {
                let cells = row.makeRandomAccess()
                guard let value = try cells[columns.count].decode(String?.self), keep(value) else { continue }
                kept.append(try (0..<columns.count).map { try cells[$0].decode(String?.self).map(Cell.text) ?? .null })
            }
            return kept
        }
    }

    func select(_ table: String, columns: [String], keys: [String], rows: [[Cell]]) async throws -> [[Cell]] {
        _ = try await schema()
        var binds = PostgresBindings()
        let sql =
            "SELECT " + columns.map(text).joined(separator: ", ") + " FROM " + Self.quoted(table) + " WHERE "
            + keyMatch(table, keys, rows: rows, binds: &binds)
        return try await read(sql, binds, width: columns.count)
    }

    func count(_ sql: String, _ binds: PostgresBindings) async throws -> Int {
        let rows = try await execute(
            "WITH changed AS (" + sql + " RETURNING 1) SELECT count(*)::int8 FROM changed", binds)
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    func delete(_ table: String, keys: [String], rows: [[Cell]]) async throws -> Int {
        _ = try await schema()
        var binds = PostgresBindings()
        return try await count(
            "DELETE FROM " + Self.quoted(table) + " WHERE " + keyMatch(table, keys, rows: rows, binds: &binds), binds)
    }

    /// The fixed mask of a column's type: `*` for text, 0 for numbers, NULL otherwise (read back as text).
    func mask(_ table: String, _ column: String) -> Cell {
        let type = type(table, column)
        if type == "text" || type.hasPrefix("character") || type == "citext" { return .text("*") }
        if ["smallint", "integer", "bigint", "numeric", "real", "double precision"].contains(type) {
            return .text("0")
        }
        return .null
    }

    func update(_ table: String, keys: [String], rows: [[Cell]], set: [(column: String, to: Assignment)])
        async throws -> Int
    {
        _ = try await schema()
        var binds = PostgresBindings()
        var assignments: [String] = []
        // Per-row values (hashes) join on the key: `FROM unnest(keys…, values…) AS v(k0, …, v0, …)`.
        var arrays: [String] = []
        var names: [String] = []
        if set.contains(where: { if case .values = $0.to { true } else { false } }) {
            for (index, key) in keys.enumerated() {
                binds.append(rows.map { $0[index].text ?? "" })
                arrays.append("$\(binds.count)::text[]::\(type(table, key))[]")
                names.append("k\(index)")
            }
        }
        for (column, to) in set {
            switch to {
            case .null: assignments.append(Self.quoted(column) + " = NULL")
            case .mask:
                let literal = mask(table, column).text.map { $0 == "*" ? "'*'" : $0 } ?? "NULL"
                assignments.append(Self.quoted(column) + " = " + literal)
            case .values(let cells):
                binds.append(cells.map { $0.text ?? "" })
                arrays.append("$\(binds.count)::text[]")
                names.append("v\(names.count)")
                assignments.append(
                    Self.quoted(column) + " = NULLIF(v." + names.last! + ", '')::" + type(table, column))
            }
        }
        var sql = "UPDATE " + Self.quoted(table) + " AS t SET " + assignments.joined(separator: ", ")
        if arrays.isEmpty {
            sql += " WHERE " + keyMatch(table, keys, rows: rows, binds: &binds)
        } else {
            sql +=
                " FROM unnest(" + arrays.joined(separator: ", ") + ") AS v(" + names.joined(separator: ", ")
                + ") WHERE "
                + keys.indices.map { "t." + Self.quoted(keys[$0]) + " = v.k\($0)" }.joined(separator: " AND ")
        }
        return try await count(sql, binds)
    }
}
