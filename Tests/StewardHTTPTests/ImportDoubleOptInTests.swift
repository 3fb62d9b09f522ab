import Foundation
import HTTPTypes
import StewardTesting
import Testing

/// `steward consent import` and double opt-in (issue 14): a grant with `confirmedAt` is recorded as
/// granted with that proof; without it, it is rejected unless `--tokens FILE` is given, which records
/// it pending and writes its token to the file, where the company's confirmation page can use it. No
/// pending record is left that nobody can confirm, and the summary says what happened to each line.
@Suite struct ImportDoubleOptIn {
    @Test func grantsWithAndWithoutConfirmedAt() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("doi") { try await Self.run(database: database, in: $0) }
        }
    }

    static func run(database: [String], in directory: URL) async throws {
        let data = ["--data-dir", directory.appendingPathComponent("data").path] + database
        // No extension: recognised as CSV by its header.
        let file = directory.appendingPathComponent("newsletter-export")
        // Ada confirmed a month ago; Old confirmed three years ago, past the purpose's 24-month validity.
        let formatter = ISO8601DateFormatter()
        let adaConfirmed = formatter.string(from: Date().addingTimeInterval(-30 * 86_400))
        let oldConfirmed = formatter.string(from: Date().addingTimeInterval(-3 * 365 * 86_400))
        try """
        email,purpose,decision,noticeId,noticeVersion,confirmedAt
        ada@example.com,marketing.email,granted,newsletter-signup,3,\(adaConfirmed)
        bob@example.com,marketing.email,granted,newsletter-signup,3,
        cy@example.com,marketing.email,granted,newsletter-signup,3,2999-01-01
        dee@example.com,analytics,denied,,,2024-01-01
        eve@example.com,marketing.email,granted,newsletter-signup,3,yesterday
        old@example.com,marketing.email,granted,newsletter-signup,3,\(oldConfirmed)

        """.write(to: file, atomically: true, encoding: .utf8)
        let rejects = directory.appendingPathComponent("rejects.csv").path

        let first = try await BuiltBinary.runFully(["consent", "import", file.path, "--rejects", rejects] + data)
        #expect(first.status == 2, "\(first.errors)")
        #expect(first.output.contains("imported 2 of 6 records"))
        #expect(first.output.contains("line 3: consent.confirmation_required [confirmedAt]"))
        #expect(first.output.contains("line 4: consent.confirmed_at_in_future [confirmedAt]"))
        #expect(first.output.contains("line 5: consent.confirmed_at_not_allowed [confirmedAt]"))
        #expect(first.output.contains("line 6: consent.confirmed_at_invalid [confirmedAt]"))
        #expect(first.output.contains("1 double opt-in grant(s) were not recorded: add confirmedAt"))
        #expect(!first.output.contains("recorded as pending"))

        // Again with --tokens: Bob's grant is recorded pending and his token written, mode 0600.
        let tokens = directory.appendingPathComponent("tokens.csv").path
        let second = try await BuiltBinary.runFully(
            ["consent", "import", file.path, "--again", "--tokens", tokens] + data)
        #expect(second.status == 2)
        #expect(second.output.contains("imported 3 of 6 records"))
        #expect(
            second.output.contains(
                "1 double opt-in grant(s) recorded as pending: each line's confirmation token is in \(tokens)"))
        #expect(!second.output.contains("were not recorded"))
        let attributes = try FileManager.default.attributesOfItem(atPath: tokens)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let rows = try String(contentsOfFile: tokens, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: ",").map(String.init)
        }
        #expect(rows.first == ["line", "subjectId", "purpose", "token", "expiresAt"])
        #expect(rows.count == 2)
        let bob = try #require(rows.dropFirst().first)
        #expect(bob.count == 5 && bob[0] == "3" && bob[2] == "marketing.email" && bob[3].hasPrefix("dc_"))
        #expect(!rows.joined().joined().contains("bob@"))  // no personal value in the file

        // A file whose kind cannot be told is refused with a hint, not guessed.
        let odd = directory.appendingPathComponent("export.dat")
        try "name;mail\nx;y\n".write(to: odd, atomically: true, encoding: .utf8)
        let refused = try await BuiltBinary.runFully(["consent", "import", odd.path] + data)
        #expect(refused.status == 64)
        #expect(refused.errors.contains("pass --format csv or --format jsonl"))
        #expect(
            refused.errors.contains("Usage: consent import") || refused.errors.contains("Usage: steward consent import")
        )

        // Served: Ada is granted with her confirmation as proof; Bob is pending until the company's
        // confirmation page calls /v1/consents/confirm with his token.
        let created = try await BuiltBinary.run(["keys", "create", "--role", "service", "--name", "page"] + data)
        let key = try #require(created.output.split(separator: "\n").last.map(String.init))
        let server = try ServerProcess(
            data: data[1], database: database, log: directory.appendingPathComponent("server.log"))
        defer { server.kill() }
        try await server.withClient(key: key) { api in
            let ada = try await api.send(.get, "/v1/consents/check?email=ada%40example.com&purpose=marketing.email")
            #expect(ada.json["allowed"] as? Bool == true && ada.json["status"] as? String == "granted")
            let found = try await api.send(.get, "/v1/subjects?email=ada%40example.com").json
            let subject = try #require(found["subjectId"] as? String)
            let history = try await api.send(.get, "/v1/subjects/\(subject)/consents/history").json
            let events = try #require(history["events"] as? [[String: Any]])
            #expect(events.count == 2 && events.allSatisfy { $0["status"] as? String == "granted" })
            let proof = events.compactMap { $0["confirmedAt"] as? String }
            #expect(proof.count == 2 && proof.allSatisfy { $0.hasPrefix(String(adaConfirmed.prefix(19))) })
            // Validity runs from the confirmation: a three-year-old one has expired.
            let old = try await api.send(.get, "/v1/consents/check?email=old%40example.com&purpose=marketing.email")
            #expect(old.json["allowed"] as? Bool == false && old.json["status"] as? String == "expired")

            let check = "/v1/consents/check?email=bob%40example.com&purpose=marketing.email"
            #expect(try await api.send(.get, check).json["status"] as? String == "pending")
            let confirmed = try await api.send(.post, "/v1/consents/confirm", #"{"token":"\#(bob[3])"}"#)
            #expect(confirmed.status == .ok)
            #expect(try await api.send(.get, check).json["allowed"] as? Bool == true)
        }
        #expect(try await server.terminate() == 0)
    }
}
