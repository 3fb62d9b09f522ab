import Foundation
import StewardTesting
import Testing

/// `steward consent import` end to end: the built binary on a temporary data directory, and on
/// PostgreSQL on a schema of its own.
@Suite struct ConsentImportCommand {
    @Test func rejectedLinesAreSummarisedByReasonAndListedInTheRejectsFile() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("cli") { try await Self.importTwice(database: database, in: $0) }
        }
    }

    /// Issue 16, item 8a: a CSV without its header row has a person's data where the header should
    /// be. The refusal names the column's position, and nothing the file holds appears anywhere.
    @Test func aCSVWithoutAHeaderRowEchoesNothingItHolds() async throws {
        try await BuiltBinary.withDirectory("noheader") { directory in
            let file = directory.appendingPathComponent("people.csv")
            try "ada.lovelace@example.com,analytics,granted,privacy-policy,2026-01\n"
                .write(to: file, atomically: true, encoding: .utf8)
            let result = try await BuiltBinary.runFully(
                ["consent", "import", file.path, "--data-dir", directory.appendingPathComponent("data").path])
            #expect(result.status == 1)
            #expect(
                result.errors.contains("import.unknown_column") || result.errors.contains("column 1 of the first row"))
            for shown in [result.output, result.errors] {
                for value in ["ada.lovelace", "lovelace", "example.com", "privacy-policy"] {
                    #expect(!shown.contains(value), "\(value) in: \(shown)")
                }
            }
        }
    }

    static func importTwice(database: [String], in directory: URL) async throws {
        let file = directory.appendingPathComponent("consents.csv")
        try """
        email,purpose,decision,noticeId,noticeVersion
        ada@example.com,analytics,granted,privacy-policy,2026-01
        not-an-email,analytics,granted,privacy-policy,2026-01
        grace@example.com,no.such.purpose,granted,privacy-policy,2026-01
        linus@example.com,analytics,denied,,
        also-not-an-email,analytics,granted,privacy-policy,2026-01

        """.write(to: file, atomically: true, encoding: .utf8)
        let rejects = directory.appendingPathComponent("rejects.csv")
        let data = directory.appendingPathComponent("data").path

        let first = try await BuiltBinary.run(
            ["consent", "import", file.path, "--data-dir", data, "--rejects", rejects.path] + database)
        #expect(first.status == 2)
        // On PostgreSQL the ledger is there, not in the data directory (which holds the root key).
        #expect(FileManager.default.fileExists(atPath: data + "/steward.sqlite") == database.isEmpty)
        #expect(first.output.contains("imported 2 of 5 records"))
        #expect(first.output.contains("rejected 3 (by reason: identity.invalid_email ×2, purpose.unknown ×1)"))
        #expect(first.output.contains("line 3: identity.invalid_email [subject.email]"))
        let listed = try String(contentsOf: rejects, encoding: .utf8).split(separator: "\n")
        #expect(listed.first == "line,code,field,detail")
        #expect(
            listed.dropFirst().map { $0.split(separator: ",").prefix(3).joined(separator: ",") } == [
                "3,identity.invalid_email,subject.email", "4,purpose.unknown,purpose",
                "6,identity.invalid_email,subject.email",
            ])
        // The import is in the audit chain: the root key bound to the new database, the import's
        // start, two subjects created, two decisions, the import's finish.
        let verify = try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database)
        #expect(verify.status == 0)
        #expect(verify.output.contains("audit chain intact: 7 entries verified"))
        // `steward consent imports` lists it by format and digest, finished.
        let imports = try await BuiltBinary.run(["consent", "imports", "--data-dir", data] + database)
        #expect(imports.status == 0)
        let listing = imports.output.split(separator: "\n").map(String.init)
        #expect(listing.first?.hasPrefix("consents.csv  csv  sha256 ") == true, "\(listing)")
        #expect(listing.count == 4 && listing[1].contains("started 20") && listing[1].contains(", finished 20"))
        #expect(listing.count == 4 && listing[2] == "  2 accepted, 3 rejected, 6 lines read")
        #expect(imports.output.contains("1 import(s): 1 finished, 0 unfinished"))
        // Reasons never quote the values they refuse.
        #expect(!listed.joined().contains("not-an-email") && !listed.joined().contains("grace"))

        // The same file again: recognised by its digest and not imported twice.
        let again = try await BuiltBinary.run(["consent", "import", file.path, "--data-dir", data] + database)
        #expect(again.status == 0)
        #expect(again.output.contains("nothing imported: this file was imported completely before"))
    }
}
