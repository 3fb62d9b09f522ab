import Foundation
import NIOSSL
public import PostgresNIO

/// Parses `postgres://user:password@host:port/database?sslmode=verify-full&search_path=schema`.
///
/// `sslmode` follows libpq: `disable` (plain TCP), `prefer` (TLS when the server offers it,
/// unverified), `require` (TLS, certificate not verified), `verify-ca` (TLS, chain verified against
/// `sslrootcert` or the system roots), `verify-full` (also the host name). The default is
/// `disable`, as before: loopback and private networks.
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
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database, tls: try tls(mode: query["sslmode"] ?? "disable", rootCertificate: query["sslrootcert"])
        )
        if let schema = query["search_path"], !schema.isEmpty {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        configuration.options.maximumConnections = Int(query["pool_max"] ?? "") ?? 20
        return configuration
    }

    static func tls(mode: String, rootCertificate: String?) throws -> PostgresClient.Configuration.TLS {
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
        case "disable": return .disable
        case "prefer": return .prefer(try configuration(.none))
        case "require": return .require(try configuration(.none))
        case "verify-ca": return .require(try configuration(.noHostnameVerification))
        case "verify-full": return .require(try configuration(.fullVerification))
        default:
            throw Invalid(
                description: "sslmode \(mode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
    }
}
