import Foundation
import HTTPTypes
import StewardCore
import StewardTesting
import Testing

/// `steward requests …` end to end: requests submitted to a running server over HTTP, then the
/// officer's desk from another process on the same store — list by deadline, show, extend, deny,
/// cancel — each step audited, and the chain still verifying. SQLite and (in CI) PostgreSQL.
@Suite struct RequestsCommandLine {
    @Test func theOfficersDeskListsShowsAndStepsRequests() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("requests-cli") { directory in
                let data = directory.appendingPathComponent("data").path
                let created = try await BuiltBinary.run(
                    ["keys", "create", "--role", "service", "--name", "shop", "--json", "--data-dir", data] + database)
                let key = try #require(
                    (try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: String])?["secret"])
                let server = try ServerProcess(
                    data: data, database: database, log: directory.appendingPathComponent("server.log"))
                defer { server.kill() }
                let (erasure, access) = try await server.withClient(key: key) { api in
                    let erasure = try await api.send(
                        .post, "/v1/requests",
                        #"{"regime":"gdpr","type":"erasure","subject":{"email":"desk@example.com"},"verified":"pre_verified"}"#
                    )
                    let access = try await api.send(
                        .post, "/v1/requests", #"{"regime":"ccpa","type":"access","subject":{"phone":"+14155550199"}}"#)
                    #expect(erasure.status == .created && access.status == .created)
                    return (
                        try #require(erasure.json["id"] as? String), try #require(access.json["id"] as? String)
                    )
                }
                func steward(_ arguments: [String]) async throws -> (status: Int32, output: String) {
                    try await BuiltBinary.run(["requests"] + arguments + ["--data-dir", data] + database)
                }

                let list = try await steward(["list"])
                #expect(list.status == 0)
                let lines = list.output.split(separator: "\n")
                #expect(lines.count == 3 && lines.last == "2 request(s)")
                #expect(lines.contains { $0.hasPrefix(erasure) && $0.contains("gdpr  erasure  verified  due ") })
                #expect(lines.contains { $0.hasPrefix(access) && $0.contains("ccpa  access  received  due ") })
                #expect(!list.output.contains("desk@example.com") && !list.output.contains("4155550199"))

                let extended = try await steward(["extend", erasure, "--reason", "records in three archives"])
                #expect(extended.status == 0 && extended.output.contains("extended"))
                let again = try await BuiltBinary.runFully(
                    ["requests", "extend", erasure, "--reason", "again", "--data-dir", data] + database)
                #expect(again.status != 0 && again.errors.contains("extended already"))
                let denied = try await steward(["deny", access, "--reason", "unverifiable"])
                #expect(denied.status == 0 && denied.output.contains("ccpa  access  denied"))
                let cancelled = try await steward(["cancel", erasure])
                #expect(cancelled.status == 0 && cancelled.output.contains("gdpr  erasure  cancelled"))

                let show = try await steward(["show", erasure])
                #expect(show.status == 0)
                #expect(show.output.contains("extended on") && show.output.contains("records in three archives"))
                #expect(show.output.contains("verification: pre_verified"))
                #expect(try await steward(["list"]).output.hasSuffix("0 request(s)\n"))
                let closed = try await steward(["list", "--status", "cancelled", "--status", "denied"])
                #expect(closed.output.hasSuffix("2 request(s)\n"))
                let unknown = try await BuiltBinary.runFully(
                    ["requests", "list", "--status", "done", "--data-dir", data] + database)
                #expect(unknown.status == 64 && unknown.errors.contains("unknown status 'done'"))

                let audit = try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database)
                #expect(audit.status == 0 && audit.output.contains("audit chain intact"))
                #expect(try await server.terminate() == 0)
            }
        }
    }
}
