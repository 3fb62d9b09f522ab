import Foundation
import Testing

/// The README's five-minute walk-through, run as written (issue 14): the block between
/// `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->` is taken from the README itself, so the
/// README cannot drift from what Steward does. Each `# → …` line under a command is what the command
/// must print (`…` matches anything); the test checks every one.
///
/// Two substitutions only, both for running inside the test suite: `swift build` is skipped (the
/// suite runs on the binary it built), and port 8080 becomes a free one (other tests or a developer's
/// own server may hold 8080). It runs in a scratch directory holding links to the checkout's `.build`
/// and `Policies`, so `./.steward` is a fresh one.
@Suite struct ReadmeWalkThrough {
    struct Step {
        var expected: [String] = []
    }

    static func walkThrough(_ marker: String = "walkthrough") throws -> String {
        let readme = try String(
            contentsOf: BuiltBinary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- \(marker):begin -->\n```sh\n"))
        let end = try #require(
            readme.range(of: "```\n<!-- \(marker):end -->", range: begin.upperBound..<readme.endIndex))
        return String(readme[begin.upperBound..<end.lowerBound])
    }

    /// The block as a script that prints a marker after each group of `# →` lines, and the groups.
    static func instrument(_ block: String, port: Int) -> (script: String, steps: [Step]) {
        var script = "trap 'kill $(jobs -p) 2> /dev/null || true' EXIT\n"
        var steps: [Step] = []
        var inExpectation = false
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# → ") {
                if !inExpectation { steps.append(Step()) }
                steps[steps.count - 1].expected.append(String(line.dropFirst(4)))
                inExpectation = true
                continue
            }
            if inExpectation { script += "printf '\\n@@STEP@@\\n'\n" }
            inExpectation = false
            if line == "swift build" {
                script += ":  # built by the test run\n"
                continue
            }
            script += line.replacingOccurrences(of: "localhost:8080", with: "localhost:\(port)") + "\n"
        }
        if inExpectation { script += "printf '\\n@@STEP@@\\n'\n" }
        return (script, steps)
    }

    /// Whether `output` shows `expected`, where `…` in `expected` matches any text.
    static func matches(_ output: String, _ expected: String) -> Bool {
        var rest = Substring(output)
        for piece in expected.components(separatedBy: "…") where !piece.isEmpty {
            guard let found = rest.range(of: piece) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    /// Runs a README block as written in a scratch directory holding links to the checkout's
    /// `.build` and `Policies`, checks every `# →` line, then hands the directory to `after`.
    static func run(
        _ marker: String, port: Int = 8080, environment: [String: String] = [:], minimumSteps: Int,
        after: (URL) throws -> Void
    ) async throws {
        let (script, steps) = instrument(try walkThrough(marker), port: port)
        #expect(steps.count >= minimumSteps, "every step shows what it prints")
        try await BuiltBinary.withDirectory("readme-\(marker)") { directory in
            for name in [".build", "Policies"] {
                try FileManager.default.createSymbolicLink(
                    at: directory.appendingPathComponent(name),
                    withDestinationURL: BuiltBinary.packageRoot.appendingPathComponent(name))
            }
            let file = directory.appendingPathComponent("\(marker).sh")
            try script.write(to: file, atomically: true, encoding: .utf8)
            let (status, output, errors, _) = try await BuiltBinary.runProcess(
                URL(fileURLWithPath: "/bin/bash"), ["-e", "-o", "pipefail", file.path],
                environment: [
                    "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path,
                ].merging(environment) { _, new in new }, directory: directory, timeout: .seconds(180))
            #expect(status == 0, "the \(marker) block failed (exit \(status)): \(errors)\n\(output)")
            let segments = output.components(separatedBy: "@@STEP@@")
            #expect(segments.count == steps.count + 1, "\(output)")
            for (index, step) in steps.enumerated() where index < segments.count {
                for expected in step.expected {
                    #expect(
                        matches(segments[index], expected),
                        "step \(index + 1): expected \(expected), got \(segments[index])")
                }
            }
            try after(directory)
        }
    }

    @Test func theBlockRunsAsWrittenAndPrintsWhatItSays() async throws {
        let block = try Self.walkThrough()
        #expect(block.contains("swift build\n"))
        #expect(block.contains(".build/debug/steward serve"))
        let port = try ServerProcess.freePort()
        try await Self.run("walkthrough", port: port, environment: ["STEWARD_HTTP_PORT": "\(port)"], minimumSteps: 8) {
            directory in
            // What the README says of the database file holds too.
            let database = try Data(contentsOf: directory.appendingPathComponent(".steward/steward.sqlite"))
            #expect(database.range(of: Data("alice".utf8)) == nil)
        }
    }

    @Test func theMatcherCanFail() {
        #expect(
            Self.matches(
                "{\"allowed\":true,\"basis\":\"x\",\"status\":\"granted\"}",
                "{\"allowed\":true,…,\"status\":\"granted\"}"))
        #expect(!Self.matches("{\"allowed\":false,\"status\":\"granted\"}", "{\"allowed\":true,…"))
        #expect(!Self.matches("granted", "withdrawn"))
    }
}

/// The README's data map block (issue 17), run as written the same way: the example store, drift,
/// discovery and the records of processing, with no server.
@Suite struct ReadmeDataMap {
    @Test func theBlockRunsAsWrittenAndPrintsWhatItSays() async throws {
        try await ReadmeWalkThrough.run("datamap", minimumSteps: 6) { directory in
            let page = try String(contentsOf: directory.appendingPathComponent("ropa.html"), encoding: .utf8)
            #expect(page.contains("Records of processing activities"))
        }
    }
}
