import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@_spi(Testing) import StewardSQLite
import StewardTesting
import Testing

/// The README's five-minute walk-through against the built `steward` binary: `steward serve` on a
/// fresh data directory with no set-up (it generates its development root key), `steward keys create`,
/// the consent calls over loopback HTTP, SIGTERM, `steward audit verify`, and — on SQLite — one edited
/// audit row that makes `audit verify` fail and name the entry. On SQLite it also reads the database
/// file, its WAL and the server's own log for the walk-through's email, phone, IP and user agent.
@Suite struct ServeCommand {
    static let email = "Alice.Walk@Example.com"
    static let phone = "+1 (415) 555-0142"
    /// The forms the values would take if they leaked: as given, normalised, and their parts.
    static let personalValues = [
        "Alice.Walk@Example.com", "alice.walk@example.com", "alice.walk", "+14155550142", "4155550142", "555-0142",
        "203.0.113.9", "Mozilla/5.0 (walk-through)",
    ]

    @Test func theReadmeWalkThroughAgainstTheBuiltBinary() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("serve") { try await Self.walkThrough(database: database, in: $0) }
        }
    }

    static func walkThrough(database: [String], in directory: URL) async throws {
        let data = directory.appendingPathComponent("data").path
        let log = directory.appendingPathComponent("server.log")

        var server = try ServerProcess(data: data, database: database, log: log)
        defer { server.kill() }
        try await server.waitUntilReady()
        // No root key was configured: a development key file was generated, readable by its owner only.
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/root.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o400)

        let created = try await BuiltBinary.run(
            ["keys", "create", "--role", "admin", "--name", "walkthrough", "--data-dir", data] + database)
        #expect(created.status == 0)
        let key = try #require(created.output.split(separator: "\n").last.map(String.init))
        #expect(key.hasPrefix("stw_"))

        let subject: String = try await server.withClient(key: key) { api in
            // A double opt-in grant: pending until confirmed with the token from the 201.
            let grant = try await api.send(
                .post, "/v1/consents",
                #"{"subject":{"email":"\#(email)"},"purpose":"marketing.email","decision":"granted","notice":{"id":"newsletter-signup","version":"3"},"method":"web_form","proof":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (walk-through)"}}"#
            )
            #expect(grant.status == .created)
            let token = try #require((grant.json["confirmation"] as? [String: Any])?["token"] as? String)
            let subject = try #require(grant.json["subjectId"] as? String)
            let check = "/v1/consents/check?email=alice.walk%40example.com&purpose=marketing.email"
            #expect(try await api.send(.get, check).json["status"] as? String == "pending")

            #expect(try await api.send(.post, "/v1/consents/confirm", #"{"token":"\#(token)"}"#).status == .ok)
            let allowed = try await api.send(.get, check).json
            #expect(allowed["allowed"] as? Bool == true)
            #expect(allowed["status"] as? String == "granted")
            #expect(allowed["basis"] as? String == "consent")
            // The token is single-use.
            #expect(try await api.send(.post, "/v1/consents/confirm", #"{"token":"\#(token)"}"#).status != .ok)

            let withdraw = #"{"subject":{"email":"\#(email)"},"purpose":"marketing.email","decision":"withdrawn"}"#
            #expect(try await api.send(.post, "/v1/consents", withdraw).status == .created)
            let denied = try await api.send(.get, check).json
            #expect(denied["allowed"] as? Bool == false)
            #expect(denied["status"] as? String == "withdrawn")

            let history = try await api.send(.get, "/v1/subjects/\(subject)/consents/history").json
            let events = try #require(history["events"] as? [[String: Any]])
            #expect(events.compactMap { $0["status"] as? String } == ["pending", "granted", "withdrawn"])

            // A phone number linked to the same person finds the same state.
            let phoneJSON = #"{"phone":"\#(phone)"}"#
            #expect(try await api.send(.post, "/v1/subjects/\(subject)/identities", phoneJSON).status == .created)
            let byPhone = try await api.send(.get, "/v1/consents/check?phone=%2B14155550142&purpose=marketing.email")
            #expect(byPhone.json["recordId"] as? String == denied["recordId"] as? String)
            return subject
        }

        if database.isEmpty {
            // While the server runs the recent pages sit in the WAL; after shutdown, in the database file.
            try Self.expectNoPersonalValues(in: Self.sqliteFiles(data), when: "while serving")
        }
        // SIGTERM: a graceful shutdown, exit status 0.
        #expect(try await server.terminate() == 0)
        if database.isEmpty {
            try Self.expectNoPersonalValues(in: Self.sqliteFiles(data), when: "after shutdown")
        }
        try Self.expectNoPersonalValues(in: [log], when: "in the server's log")

        // Restarted on the same data directory and key, the ledger reads back.
        server = try ServerProcess(data: data, database: database, log: log)
        try await server.withClient(key: key) { api in
            let states = try await api.send(.get, "/v1/subjects/\(subject)/consents").json
            let consents = try #require(states["consents"] as? [[String: Any]])
            #expect(consents.compactMap { $0["status"] as? String } == ["withdrawn"])
        }
        // `keys list` and `keys revoke` from another process while the server runs: the revoked key
        // is refused (it was never used, so no instance has it cached).
        let second = try await BuiltBinary.run(
            ["keys", "create", "--role", "service", "--name", "mailer", "--json", "--data-dir", data] + database)
        let created2 = try #require(
            try JSONSerialization.jsonObject(with: Data(second.output.utf8)) as? [String: String])
        #expect(created2["secret"]?.hasPrefix("stw_") == true)
        let listed = try await BuiltBinary.run(["keys", "list", "--data-dir", data] + database)
        #expect(listed.output.contains("2 key(s), 2 active"))
        #expect(!listed.output.contains(key) && !listed.output.contains(created2["secret"] ?? "-"))
        let revoked = try await BuiltBinary.run(
            ["keys", "revoke", created2["id"] ?? "", "--data-dir", data] + database)
        #expect(revoked.status == 0)
        #expect(try await BuiltBinary.run(["keys", "list", "--data-dir", data] + database).output.contains("1 active"))
        try await server.withClient(key: created2["secret"] ?? "") { api in
            let status = try await api.send(.get, "/v1/consents/check?email=a%40example.com&purpose=analytics").status
            #expect(status == .unauthorized)
        }
        #expect(try await server.terminate() == 0)

        let verify = try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database)
        #expect(verify.status == 0)
        #expect(verify.output.contains("audit chain intact:"))

        guard database.isEmpty else { return }
        // Editing one audit row in the database file breaks the chain at that entry.
        let store = try SQLiteStore(path: data + "/steward.sqlite")
        try await store.unsafeExecute("UPDATE audit_log SET outcome = 'denied' WHERE sequence = 4")
        let broken = try await BuiltBinary.run(["audit", "verify", "--data-dir", data])
        #expect(broken.status == 1)
        #expect(broken.output.contains("audit chain BROKEN at entry 4"))
        #expect(broken.output.contains("3 entries before it verified"))
    }

    static func sqliteFiles(_ data: String) -> [URL] {
        ["steward.sqlite", "steward.sqlite-wal"].map { URL(fileURLWithPath: data).appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    static func expectNoPersonalValues(in files: [URL], when: String) throws {
        #expect(!files.isEmpty)
        for file in files {
            let bytes = try Data(contentsOf: file)
            for value in personalValues {
                #expect(bytes.range(of: Data(value.utf8)) == nil, "\(value) found in \(file.lastPathComponent) \(when)")
            }
        }
    }
}

/// The built binary running `steward serve` on a free loopback port, its log in a file.
struct ServerProcess {
    let process = Process()
    let port: Int
    let dataDir: String
    let log: URL

    init(data: String, database: [String], log: URL, environment: [String: String] = [:]) throws {
        port = try Self.freePort()
        dataDir = data
        self.log = log
        process.executableURL = BuiltBinary.url
        process.arguments = ["serve", "--data-dir", data, "--port", "\(port)"] + database
        process.currentDirectoryURL = BuiltBinary.packageRoot
        // Debug level: the most the server ever logs, all of it read for personal values afterwards.
        process.environment = ["STEWARD_LOG_LEVEL": "debug", "PATH": "/usr/bin:/bin"].merging(environment) { $1 }
        if !FileManager.default.fileExists(atPath: log.path) {
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Runs `body` with a client once `/ready` answers (the first start migrates), then closes it.
    func withClient<T: Sendable>(key: String, _ body: @escaping @Sendable (APIClient) async throws -> T) async throws
        -> T
    {
        try await waitUntilReady()
        return try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await body(APIClient(client: client, key: key))
        }
    }

    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !(await isReady()) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                // What the server said, so that a failure names its cause.
                let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw NotReady(
                    port: port, running: process.isRunning,
                    log: String(
                        said.split(separator: "\n").filter { !$0.contains("*****") }.suffix(12).joined(separator: "\n"))
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func isReady() async -> Bool {
        let status = try? await TestClient.withClient(host: "127.0.0.1", port: port) {
            try await $0.get("/ready").status
        }
        return status == .ok
    }

    struct NotReady: Error, CustomStringConvertible {
        var port: Int
        var running: Bool
        var log: String
        var description: String {
            "steward serve did not answer /ready on port \(port) (\(running ? "still running" : "exited")); its log ends:\n\(log)"
        }
    }

    /// SIGTERM, then the exit status (waited for off the cooperative pool, see `BuiltBinary`).
    func terminate() async throws -> Int32 {
        let process = self.process
        process.terminate()
        return try await BuiltBinary.offPool {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    func kill() { if process.isRunning { process.terminate() } }

    /// A port the kernel has just handed out on loopback (bound, read and released).
    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The walk-through's calls with the bearer key, answers parsed as JSON objects.
struct APIClient: Sendable {
    let client: TestClient
    let key: String

    struct Answer {
        var status: HTTPResponse.Status
        var json: [String: Any]
    }

    func send(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil) async throws -> Answer {
        var headers: HTTPFields = [.authorization: "Bearer \(key)"]
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(
            .init(uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        let bytes = response.body.map { Data($0.readableBytesView) } ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any]
        return Answer(status: response.status, json: object ?? [:])
    }
}
