import Foundation
public import NIOSSL
public import PostgresNIO

/// Parses `postgres://user:password@host:port/database?sslmode=verify-full&search_path=schema`.
///
/// `sslmode` follows libpq: `disable` (plain TCP), `prefer` (TLS when the server offers it,
/// unverified), `require` (TLS, certificate not verified), `verify-ca` (TLS, chain verified against
/// `sslrootcert` or the system roots), `verify-full` (also the host name). The default is
/// `disable`, as before: loopback and private networks.
///
/// Shared by Steward's own store (a pooled client) and the connectors that read a customer's
/// PostgreSQL system (one connection), so that both read a URL the same way.
public enum PostgresURL {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// The URL's parts. `password` is never part of a description.
    public struct Parts: Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String?
        public var searchPath: String?
        public var poolMaximum: Int
        /// `nil` for `disable`; otherwise whether TLS is required and how it verifies.
        var tls: (required: Bool, configuration: TLSConfiguration)?

        /// Where, without credentials: "the PostgreSQL database crm on 10.0.0.5:5432".
        public var place: String { "the PostgreSQL database \(database ?? user) on \(host):\(port)" }
    }

    public static func parts(from text: String) throws -> Parts {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            throw Invalid(description: "the database URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        return Parts(
            host: host, port: components.port ?? 5432, user: components.user ?? "postgres",
            password: components.password, database: components.path.split(separator: "/").first.map(String.init),
            searchPath: query["search_path"].flatMap { $0.isEmpty ? nil : $0 },
            poolMaximum: Int(query["pool_max"] ?? "") ?? 20,
            tls: try tls(mode: query["sslmode"] ?? "disable", rootCertificate: query["sslrootcert"]))
    }

    /// A pooled client's configuration (Steward's own store).
    public static func configuration(from text: String) throws -> PostgresClient.Configuration {
        let parts = try parts(from: text)
        let tls: PostgresClient.Configuration.TLS =
            switch parts.tls {
            case nil: .disable
            case .some(let tls): tls.required ? .require(tls.configuration) : .prefer(tls.configuration)
            }
        var configuration = PostgresClient.Configuration(
            host: parts.host, port: parts.port, username: parts.user, password: parts.password,
            database: parts.database, tls: tls)
        if let schema = parts.searchPath {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        configuration.options.maximumConnections = parts.poolMaximum
        return configuration
    }

    /// One connection's configuration (a connector reading a customer's system), with a bounded
    /// connect time so that an unreachable system is an error, not a wait.
    public static func connectionConfiguration(from parts: Parts, connectTimeout: TimeAmount = .seconds(10)) throws
        -> PostgresConnection.Configuration
    {
        let tls: PostgresConnection.Configuration.TLS =
            switch parts.tls {
            case nil: .disable
            case .some(let tls):
                tls.required
                    ? .require(try NIOSSLContext(configuration: tls.configuration))
                    : .prefer(try NIOSSLContext(configuration: tls.configuration))
            }
        var configuration = PostgresConnection.Configuration(
            host: parts.host, port: parts.port, username: parts.user, password: parts.password,
            database: parts.database, tls: tls)
        if let schema = parts.searchPath {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        configuration.options.connectTimeout = connectTimeout
        return configuration
    }

    static func tls(mode: String, rootCertificate: String?) throws -> (required: Bool, configuration: TLSConfiguration)?
    {
        func configuration(_ verification: CertificateVerification) throws -> TLSConfiguration {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = verification
            if let rootCertificate, verification != .none {
                guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
                    throw Invalid(description: "sslrootcert: cannot read \(rootCertificate)")
                }
                tls.trustRoots = .file(rootCertificate)
            }
            return tls
        }
        switch mode {
        case "disable": return nil
        case "prefer": return (false, try configuration(.none))
        case "require": return (true, try configuration(.none))
        case "verify-ca": return (true, try configuration(.noHostnameVerification))
        case "verify-full": return (true, try configuration(.fullVerification))
        default:
            throw Invalid(
                description: "sslmode \(mode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
    }
}
