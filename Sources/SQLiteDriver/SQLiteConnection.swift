import CSQLite
public import Foundation
import StewardCore

/// A value bound to a statement parameter. Values are always bound, never spliced into SQL.
public enum SQLValue: Sendable {
    case int(Int64)
    case text(String)
    case blob(Data)
    /// Stored as its 16 bytes (migration 3), bound straight from the UUID's storage.
    case uuid(UUID)
    case null

    package static func uuid(_ id: UUID?) -> SQLValue { id.map { .uuid($0) } ?? .null }
    package static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    package static func time(_ date: Date) -> SQLValue { .int(Timestamp.micros(date)) }
    package static func time(_ date: Date?) -> SQLValue { date.map { .time($0) } ?? .null }
}

/// An error from SQLite: its result code and message (SQLite messages name tables and columns, never values).
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    package init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection with a prepared-statement cache. Not thread-safe: a connection is used by one
/// task at a time, which the store's leasing guarantees. The driver level, shared by Steward's own
/// store (`StewardSQLite`) and the connectors to customer systems (`StewardConnectors`).
package final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    /// What an error becomes when it leaves the connection (Steward's store maps constraint
    /// violations to its own error; a connector keeps SQLite's).
    package var mapError: (SQLiteError) -> any Error = { $0 }

    package enum Role {
        case writer, reader, checkpointer
        /// Another application's database (a connector): opened as it is, its journal mode and
        /// durability settings left alone.
        case external
    }

    package init(path: String, readOnly: Bool, role: Role) throws {
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: status, message: message)
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 10_000)
        if role == .external { return }
        if role == .writer { Self.registerUUIDFunction(handle) }
        try execute("PRAGMA foreign_keys = ON")
        // Page cache: the default 2 MiB thrashes on random-UUID B-trees past ~100k subjects. The
        // writer gets 64 MiB, each reader 8 MiB (readers are few and the OS page cache backs them).
        try execute(role == .writer ? "PRAGMA cache_size = -65536" : "PRAGMA cache_size = -8192")
        if role == .writer { try execute("PRAGMA wal_autocheckpoint = 10000") }
        if !readOnly {
            try execute("PRAGMA journal_mode = WAL")
            // Durable commits: in WAL mode FULL syncs the log at every commit.
            try execute("PRAGMA synchronous = FULL")
        }
    }

    /// `steward_uuid(text)`: the 16 bytes of a UUID's text form (NULL stays NULL). Migration 3
    /// converts the text ids of migrations 1 and 2 with it; SQLite 3.40 has no `unhex()`.
    private static func registerUUIDFunction(_ handle: OpaquePointer?) {
        sqlite3_create_function_v2(
            handle, "steward_uuid", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
            { context, _, arguments in
                guard let argument = arguments?[0] else { return }
                if sqlite3_value_type(argument) == SQLITE_NULL {
                    sqlite3_result_null(context)
                    return
                }
                guard let text = sqlite3_value_text(argument), let id = UUID(uuidString: String(cString: text)) else {
                    sqlite3_result_error(context, "steward_uuid: not a UUID", -1)
                    return
                }
                withUnsafeBytes(of: id.uuid) {
                    sqlite3_result_blob(context, $0.baseAddress, 16, SQLiteConnection.transient)
                }
            }, nil, nil, nil)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    private func error(_ status: Int32) -> SQLiteError {
        SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs SQL without parameters (pragmas, migration scripts).
    /// Frees this connection's unused page-cache pages and returns free heap to the system.
    package func releaseMemory() {
        sqlite3_db_release_memory(handle)
        #if canImport(Glibc)
            malloc_trim(0)
        #endif
    }

    package func execute(_ sql: String) throws {
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw mapError(error(status)) }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status) }
        statements[sql] = statement
        return statement
    }

    fileprivate static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ statement: OpaquePointer, _ values: [SQLValue]) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .int(let number): status = sqlite3_bind_int64(statement, index, number)
            case .text(let text): status = sqlite3_bind_text(statement, index, text, -1, Self.transient)
            case .blob(let data):
                status = data.withUnsafeBytes {
                    sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), Self.transient)
                }
            case .uuid(let id):
                status = withUnsafeBytes(of: id.uuid) {
                    sqlite3_bind_blob(statement, index, $0.baseAddress, 16, Self.transient)
                }
            case .null: status = sqlite3_bind_null(statement, index)
            }
            guard status == SQLITE_OK else { throw error(status) }
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    package func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(statement, values)
        var status = sqlite3_step(statement)
        while status == SQLITE_ROW { status = sqlite3_step(statement) }
        guard status == SQLITE_DONE else { throw mapError(error(status)) }
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and maps each row.
    package func query<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (Row) throws -> T) throws -> [T] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(statement, values)
        var rows: [T] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw mapError(error(status)) }
            rows.append(try map(Row(statement: statement)))
        }
        return rows
    }

    /// Steps through every row of a query without materialising it; returns the rows read. Checks
    /// `shouldStop` every 4,096 rows.
    package func scan(_ sql: String, shouldStop: () -> Bool) throws -> Int {
        let statement = try prepared(sql)
        defer { sqlite3_reset(statement) }
        var rows = 0
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw mapError(error(status)) }
            rows += 1
            if rows & 4095 == 0 && shouldStop() { return rows }
        }
    }

    /// A result row; columns are read by position.
    package struct Row {
        let statement: OpaquePointer

        package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        /// The value as stored: integers, text and blobs as they are, a real as its text.
        package func value(_ column: Int32) -> SQLValue {
            switch sqlite3_column_type(statement, column) {
            case SQLITE_NULL: .null
            case SQLITE_INTEGER: .int(int(column))
            case SQLITE_BLOB: .blob(blob(column))
            default: .text(text(column))
            }
        }
        package func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
        package func text(_ column: Int32) -> String {
            guard let pointer = sqlite3_column_text(statement, column) else { return "" }
            return String(cString: pointer)
        }
        package func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
        package func blob(_ column: Int32) -> Data {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return Data() }
            return Data(bytes: pointer, count: count)
        }
        package func uuid(_ column: Int32) throws -> UUID {
            guard sqlite3_column_bytes(statement, column) == 16, let pointer = sqlite3_column_blob(statement, column)
            else {
                throw SQLiteError(code: SQLITE_MISMATCH, message: "column \(column) is not a 16-byte UUID")
            }
            return UUID(uuid: pointer.loadUnaligned(as: uuid_t.self))
        }
        package func optionalUUID(_ column: Int32) throws -> UUID? { isNull(column) ? nil : try uuid(column) }
        package func time(_ column: Int32) -> Date { Timestamp.date(micros: int(column)) }
        package func optionalTime(_ column: Int32) -> Date? { isNull(column) ? nil : time(column) }
    }
}
