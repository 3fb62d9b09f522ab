import Foundation
import StewardTesting
import Testing

/// `steward consent import` end to end: the built binary on a temporary data directory, and on
/// PostgreSQL on a schema of its own.
@Suite struct ConsentImportCommand {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `swift build --build-tests` puts the executable next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("steward")
    }

    static func steward(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        process.environment = ["STEWARD_LOG_LEVEL": "error", "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func rejectedLinesAreSummarisedByReasonAndListedInTheRejectsFile() async throws {
        try await withScratchDatabase { database in try Self.importTwice(database: database) }
    }

    static func importTwice(database: [String]) throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the steward binary first")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-cli-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
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

        let first = try Self.steward(
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
        // The import is in the audit chain: two subjects created, two decisions, the import itself.
        let verify = try Self.steward(["audit", "verify", "--data-dir", data] + database)
        #expect(verify.status == 0)
        #expect(verify.output.contains("audit chain intact: 5 entries verified"))
        // Reasons never quote the values they refuse.
        #expect(!listed.joined().contains("not-an-email") && !listed.joined().contains("grace"))

        // The same file again: recognised by its digest and not imported twice.
        let again = try Self.steward(["consent", "import", file.path, "--data-dir", data] + database)
        #expect(again.status == 0)
        #expect(again.output.contains("nothing imported: this file was imported completely before"))
    }
}
