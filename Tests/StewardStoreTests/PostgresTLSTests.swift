import Foundation
import PostgresDriver
import PostgresNIO
import StewardPostgres
import StewardTesting
import Testing

/// `sslmode` as libpq spells it. `Scripts/test.sh` starts the throwaway server with TLS from a CA
/// it makes, and names the CA in `STEWARD_TEST_TLS_ROOT_CERT`.
@Suite struct PostgresTLS {
    static let environment = ProcessInfo.processInfo.environment
    static var serverURL: String? {
        TestBackend.current == .postgres ? environment["STEWARD_TEST_DATABASE_URL"] : nil
    }

    /// Whether the session the URL opens is encrypted, as the server reports it.
    func sessionIsEncrypted(_ url: String) async throws -> Bool {
        var configuration = try PostgresURL.configuration(from: url)
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let rows = try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            for try await (ssl) in rows.decode(Bool.self) { return ssl }
            return false
        }
    }

    func with(_ url: String, _ parameters: String) -> String {
        url + (url.contains("?") ? "&" : "?") + parameters
    }

    @Test(.enabled(if: serverURL != nil && environment["STEWARD_TEST_TLS_ROOT_CERT"] != nil))
    func verifiedTLSReachesTheServerAndAnUnknownCAIsRefused() async throws {
        let url = try #require(Self.serverURL)
        let root = try #require(Self.environment["STEWARD_TEST_TLS_ROOT_CERT"])
        #expect(try await sessionIsEncrypted(with(url, "sslmode=verify-full&sslrootcert=\(root)")))
        #expect(try await sessionIsEncrypted(with(url, "sslmode=verify-ca&sslrootcert=\(root)")))
        #expect(try await sessionIsEncrypted(with(url, "sslmode=require")))
        #expect(try await sessionIsEncrypted(with(url, "sslmode=disable")) == false)
        // The system roots do not include the test CA: verification must fail, not fall back. The
        // client's pool keeps retrying a failed handshake (about a minute before the query fails),
        // so "refused" is: no session within five seconds, where the cases above take milliseconds.
        let unverified = with(url, "sslmode=verify-full")
        let connected = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await sessionIsEncrypted(unverified)) != nil }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        #expect(connected == false)
    }

    @Test func badTLSParametersAreRefusedBeforeConnecting() {
        #expect(throws: PostgresURL.Invalid.self) {
            _ = try PostgresURL.configuration(from: "postgres://u@127.0.0.1/db?sslmode=allow-anything")
        }
        #expect(throws: PostgresURL.Invalid.self) {
            _ = try PostgresURL.configuration(
                from: "postgres://u@127.0.0.1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        }
        #expect(throws: Never.self) {
            _ = try PostgresURL.configuration(from: "postgres://u@127.0.0.1/db?sslmode=require")
        }
    }
}
