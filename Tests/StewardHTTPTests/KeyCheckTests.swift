import Foundation
import HTTPTypes
import StewardTesting
import Testing

/// The root key must match the data (issue 14): data written under key A; `steward serve` (and any
/// other command) with key B, or with no key at all, refuses with a clear error and a non-zero exit,
/// generates no development key and writes nothing; with key A the server answers as before.
@Suite struct RootKeyCheck {
    @Test func aStartWithAnotherKeyOrWithNoneIsRefusedAndWritesNothing() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("keycheck") { try await Self.refusals(database: database, in: $0) }
        }
    }

    static func keyFile(_ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("\(name).key").path
        let text = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + "\n"
        #expect(
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o400]))
        return path
    }

    static func digest(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func refusals(database: [String], in directory: URL) async throws {
        let data = directory.appendingPathComponent("data").path
        let keyA = try keyFile("a", in: directory)
        let keyB = try keyFile("b", in: directory)
        let withA = ["--data-dir", data, "--root-key-file", keyA] + database

        // Under key A: a person opts out of sale (opt-out purpose: allowed unless they said no).
        let file = directory.appendingPathComponent("optouts.csv")
        try "email,purpose,decision\nada@example.com,sale,denied\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try await BuiltBinary.run(["consent", "import", file.path] + withA).status == 0)
        let created = try await BuiltBinary.run(["keys", "create", "--role", "service", "--name", "t"] + withA)
        let secret = try #require(created.output.split(separator: "\n").last.map(String.init))
        let before = try await BuiltBinary.run(["audit", "verify"] + withA)
        #expect(before.status == 0 && before.output.contains("audit chain intact"))
        let sqlite = data + "/steward.sqlite"
        let fileBefore = database.isEmpty ? try digest(sqlite) : nil

        let refusals: [(label: String, key: [String], says: String)] = [
            ("key B", ["--root-key-file", keyB], "does not match the data"),
            ("no key", [], "no root key was given"),
        ]
        for refusal in refusals {
            let port = try ServerProcess.freePort()
            let serve = try await BuiltBinary.runFully(
                ["serve", "--data-dir", data, "--port", "\(port)"] + refusal.key + database, timeout: .seconds(60))
            #expect(!serve.timedOut, "\(refusal.label): steward serve served")
            #expect(serve.status == 1, "\(refusal.label)")
            #expect(serve.errors.contains(refusal.says), "\(refusal.label): \(serve.errors)")
            #expect(serve.errors.contains(database.isEmpty ? data : "PostgreSQL database"), "\(refusal.label)")
            if refusal.key.isEmpty {
                #expect(serve.errors.contains(data + "/root.key"))  // where a key was looked for
            } else {
                #expect(serve.errors.contains(keyB))
            }
            #expect(
                !serve.errors.contains(
                    try String(contentsOfFile: keyB, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            // Every other command refuses the same way.
            for command in [["keys", "list"], ["audit", "verify"], ["consent", "import", file.path, "--again"]] {
                let other = try await BuiltBinary.runFully(command + ["--data-dir", data] + refusal.key + database)
                #expect(other.status == 1 && other.errors.contains(refusal.says), "\(refusal.label): \(command)")
            }
        }
        // The refused starts generated no development key and wrote nothing.
        #expect(!FileManager.default.fileExists(atPath: data + "/root.key"))
        if let fileBefore { #expect(try digest(sqlite) == fileBefore) }
        #expect(try await BuiltBinary.run(["audit", "verify"] + withA).output == before.output)

        // With key A the server answers as before: the opt-out holds.
        let server = try ServerProcess(
            data: data, database: ["--root-key-file", keyA] + database,
            log: directory.appendingPathComponent("server.log"))
        defer { server.kill() }
        try await server.withClient(key: secret) { api in
            let check = try await api.send(.get, "/v1/consents/check?email=ada%40example.com&purpose=sale").json
            #expect(check["allowed"] as? Bool == false)
            #expect(check["status"] as? String == "denied")
        }
        #expect(try await server.terminate() == 0)
    }
}
