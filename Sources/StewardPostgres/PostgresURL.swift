public import Foundation
public import PostgresNIO

/// Parses `postgres://user:password@host:port/database?sslmode=disable&search_path=schema`.
public enum PostgresURL {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func configuration(from text: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            throw Invalid(description: "the database URL must look like postgres://user:password@host:5432/database")
        }
        let user = components.user ?? "postgres"
        let database = components.path.split(separator: "/").first.map(String.init)
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        switch query["sslmode"] ?? "disable" {
        case "disable": break
        default:
            throw Invalid(
                description:
                    "sslmode \(query["sslmode"]!) is not supported yet; use sslmode=disable on a private network")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database, tls: .disable)
        if let schema = query["search_path"], !schema.isEmpty {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        configuration.options.maximumConnections = Int(query["pool_max"] ?? "") ?? 20
        return configuration
    }
}
