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
    /// An application reached over HTTPS: requests are delivered to it, signed (`HTTPSystemClient`).
    case http(HTTPSystemEndpoint)

    public static func resolve(_ system: DataSystem, policies: String, environment: [String: String]) throws
        -> SystemConnection
    {
        switch system.kind {
        case .sqlite:
            if case .file(let name) = system.connection {
                return .sqlite(SQLiteConnector(path: path(name, policies: policies)))
            }
            return .sqlite(
                SQLiteConnector(
                    path: try value(of: system.connection, system: system, policies: policies, environment: environment)
                ))
        case .postgres:
            let target = try value(of: system.connection, system: system, policies: policies, environment: environment)
            do {
                return .postgres(try PostgresConnector(url: target))
            } catch {
                throw ConnectorError(
                    "system '\(system.key)': its connection is not a PostgreSQL URL (postgres://user@host:5432/database)",
                    code: .connectorNotConfigured)
            }
        case .http:
            let target = try value(of: system.connection, system: system, policies: policies, environment: environment)
            guard let reference = system.secret else {
                throw ConnectorError("system '\(system.key)' declares no secret", code: .connectorNotConfigured)
            }
            let secret = try value(of: reference, system: system, policies: policies, environment: environment)
            return .http(try HTTPSystemEndpoint(system: system.key, url: target, secret: Data(secret.utf8)))
        }
    }

    static func path(_ name: String, policies: String) -> String {
        name.hasPrefix("/") ? name : (policies as NSString).appendingPathComponent(name)
    }

    /// What a reference points to: the variable's value, or the file's text (trimmed). A refusal
    /// names the reference, never its value.
    static func value(
        of reference: ConnectionReference, system: DataSystem, policies: String, environment: [String: String]
    ) throws -> String {
        switch reference {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw ConnectorError(
                    "system '\(system.key)' connects through \(name), which is not set", code: .connectorNotConfigured)
            }
            return value
        case .file(let name):
            let path = path(name, policies: policies)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConnectorError(
                    "system '\(system.key)' connects through the file \(path), which cannot be read",
                    code: .connectorNotConfigured)
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// The live schema: tables, columns, primary and foreign keys.
    public func introspect() async throws -> LiveSchema {
        switch self {
        case .sqlite(let connector): try connector.introspect()
        case .postgres(let connector): try await connector.introspect()
        case .http(let endpoint): throw endpoint.unreadable
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
        case .http(let endpoint):
            throw endpoint.unreadable
        }
    }
}
