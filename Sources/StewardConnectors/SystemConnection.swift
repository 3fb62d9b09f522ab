public import Foundation
public import StewardCore

/// How the service reaches the customer's systems: the policy directory (for `file:` connection
/// references) and the environment (for `env:` ones), as the process started with them.
public struct CustomerSystems: Sendable {
    public var policies: String
    public var environment: [String: String]

    public init(policies: String, environment: [String: String]) {
        self.policies = policies
        self.environment = environment
    }

    public func connection(_ system: DataSystem) throws -> SystemConnection {
        try SystemConnection.resolve(system, policies: policies, environment: environment)
    }
}

/// Where a declared system lives, from its connection reference: an environment variable or a file
/// (relative to the policy directory) holding a path or a URL — or, for SQLite, the database file
/// itself. Secrets stay where the reference points; a refusal names the reference, never its value.
public enum SystemConnection: Sendable {
    case sqlite(SQLiteConnector)
    case postgres(PostgresConnector)

    public static func resolve(_ system: DataSystem, policies: String, environment: [String: String]) throws
        -> SystemConnection
    {
        let target: String
        switch system.connection {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw ConnectorError(
                    "system '\(system.key)' connects through \(name), which is not set", code: .connectorNotConfigured)
            }
            target = value
        case .file(let name):
            let path = name.hasPrefix("/") ? name : (policies as NSString).appendingPathComponent(name)
            if system.kind == .sqlite {
                target = path
            } else {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ConnectorError(
                        "system '\(system.key)' connects through the file \(path), which cannot be read",
                        code: .connectorNotConfigured)
                }
                target = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        switch system.kind {
        case .sqlite:
            return .sqlite(SQLiteConnector(path: target))
        case .postgres:
            do {
                return .postgres(try PostgresConnector(url: target))
            } catch {
                throw ConnectorError(
                    "system '\(system.key)': its connection is not a PostgreSQL URL (postgres://user@host:5432/database)",
                    code: .connectorNotConfigured)
            }
        case .http:
            throw ConnectorError(
                "system '\(system.key)' is of kind http: its connector comes with the data subject request work; SQLite and PostgreSQL systems can be read now",
                code: .connectorUnsupported)
        }
    }

    /// The live schema: tables, columns, primary and foreign keys.
    public func introspect() async throws -> LiveSchema {
        switch self {
        case .sqlite(let connector): try connector.introspect()
        case .postgres(let connector): try await connector.introspect()
        }
    }
}

extension SystemConnection {
    /// Up to `limit` rows of `columns` of `table`, each value as text (nil for NULL), handed to
    /// `row` one at a time and not kept. Reads a bounded sample: random row ids on SQLite, random
    /// pages (`TABLESAMPLE SYSTEM`) on PostgreSQL; a small table is read whole.
    public func sample(
        table: String, columns: [String], limit: Int, seed: UInt64, row: ([String?]) -> Void
    ) async throws {
        switch self {
        case .sqlite(let connector):
            try connector.sample(table: table, columns: columns, limit: limit, seed: seed, row: row)
        case .postgres(let connector):
            try await connector.sample(table: table, columns: columns, limit: limit, seed: seed, row: row)
        }
    }
}
