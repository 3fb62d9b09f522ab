import Foundation
import HTTPTypes
import StewardCore
import StewardTesting
import Testing

/// The command line's fit and finish (issue 14, point 5), each against the built binary.
@Suite struct CommandLineFinish {
    @Test func versionOnTheCommandLineAndInHealth() async throws {
        let version = try await BuiltBinary.runFully(["--version"])
        #expect(version.status == 0 && version.output == StewardVersion.current + "\n")
        try await BuiltBinary.withDirectory("version") { directory in
            let server = try ServerProcess(
                data: directory.appendingPathComponent("data").path, database: [],
                log: directory.appendingPathComponent("server.log"))
            defer { server.kill() }
            try await server.withClient(key: "") { api in
                let health = try await api.send(.get, "/health").json
                #expect(health["version"] as? String == StewardVersion.current && health["status"] as? String == "ok")
            }
            #expect(try await server.terminate() == 0)
        }
    }

    @Test func unknownLogLevelsAreRefusedWithTheCommandsUsage() async throws {
        let flag = try await BuiltBinary.runFully(["keys", "list", "--log-level", "loud"])
        #expect(flag.status == 64)
        #expect(flag.errors.contains("unknown log level 'loud' (--log-level); use one of trace, debug, info"))
        #expect(flag.errors.contains("Usage: steward keys list"))
        let env = try await BuiltBinary.runFully(["keys", "list"], environment: ["STEWARD_LOG_LEVEL": "verbose"])
        #expect(env.status == 64 && env.errors.contains("unknown log level 'verbose' (STEWARD_LOG_LEVEL)"))
    }

    @Test func anErrorAfterParsingShowsTheSubcommandsUsage() async throws {
        let revoke = try await BuiltBinary.runFully(["keys", "revoke", "not-a-key-id"])
        #expect(revoke.status == 64)
        #expect(revoke.errors.contains("Error: 'not-a-key-id' is not a key id"))
        #expect(revoke.errors.contains("Usage: steward keys revoke"))
        #expect(revoke.errors.contains("See 'steward keys revoke --help'"))
        #expect(!revoke.errors.contains("steward <subcommand>"))
        // An error that is not about usage is one line, without usage.
        try await BuiltBinary.withDirectory("missing") { directory in
            let missing = try await BuiltBinary.runFully(
                ["consent", "import", directory.appendingPathComponent("nope.csv").path, "--data-dir", directory.path])
            #expect(missing.status == 1 && missing.errors.hasPrefix("Error: cannot read "))
            #expect(!missing.errors.contains("Usage:"))
        }
    }

    /// The requests' settings are checked before anything is served: a value out of range stops
    /// `serve` with one line naming the variable and its range.
    @Test func requestSettingsOutOfRangeStopServeWithTheirRange() async throws {
        try await BuiltBinary.withDirectory("settings") { directory in
            for (name, value, range) in [
                ("STEWARD_REQUESTS_VERIFICATION_HOURS", "0", "a number of hours from 1 to 720"),
                ("STEWARD_REQUESTS_VERIFICATION_HOURS", "721", "a number of hours from 1 to 720"),
                ("STEWARD_REQUESTS_VERIFICATION_HOURS", "one week", "a number of hours from 1 to 720"),
                ("STEWARD_REQUESTS_PACKAGE_DAYS", "91", "a number of days from 1 to 90"),
            ] {
                let serve = try await BuiltBinary.runFully(
                    ["serve", "--port", "0", "--data-dir", directory.path], environment: [name: value],
                    timeout: .seconds(60))
                #expect(!serve.timedOut && serve.status == 1, "\(name)=\(value)")
                let lines = serve.errors.split(separator: "\n").filter { $0.hasPrefix("Error:") }
                #expect(lines == ["Error: \(name) must be \(range)"], "\(serve.errors)")
            }
        }
    }

    @Test func aPortInUseGivesAOneLineHint() async throws {
        try await BuiltBinary.withDirectory("port") { directory in
            // Something else holds the port.
            let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(holder) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let listening = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(holder, $0, length) == 0 && listen(holder, 1) == 0 && getsockname(holder, $0, &length) == 0
                }
            }
            #expect(listening)
            let port = Int(UInt16(bigEndian: address.sin_port))
            let serve = try await BuiltBinary.runFully(
                ["serve", "--port", "\(port)", "--data-dir", directory.path],
                environment: ["STEWARD_LOG_LEVEL": "warning"], timeout: .seconds(60))
            #expect(!serve.timedOut)
            #expect(serve.status == 1)
            let lines = serve.errors.split(separator: "\n").map(String.init).filter { $0.hasPrefix("Error:") }
            #expect(
                lines == [
                    "Error: port \(port) on 127.0.0.1 is already in use (another steward?); choose another with --port or STEWARD_HTTP_PORT"
                ], "\(serve.errors)")
            // A start that did not happen leaves the change feed alone (its prune once warned here).
            #expect(!serve.errors.contains("answer feed"), "\(serve.errors)")
        }
    }

    @Test func helpWrapsOnWordBoundariesAndDocumentsRolesAndExitStatus() async throws {
        let help = try await BuiltBinary.runFully(["consent", "import", "--help"], environment: ["COLUMNS": "80"])
        let lines = help.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Paragraphs fill their lines: no line of the overview and discussion breaks off early.
        let discussion = lines.prefix { !$0.hasPrefix("USAGE:") }
        for (index, line) in discussion.enumerated() where index + 1 < discussion.count {
            let next = discussion[discussion.index(discussion.startIndex, offsetBy: index + 1)]
            if !line.isEmpty && !next.isEmpty { #expect(line.count > 55, "short line in help: \(line)") }
            #expect(line.count <= 80, "long line in help: \(line)")
        }
        #expect(help.output.contains("Exit status: 0 when every line was recorded"))
        #expect(help.output.contains("--tokens <file>"))
        let keys = try await BuiltBinary.runFully(["keys", "create", "--help"], environment: ["COLUMNS": "80"])
        for role in Role.allCases { #expect(keys.output.contains("\(role.rawValue) — ")) }
        let top = try await BuiltBinary.runFully(["--help"])
        #expect(top.output.contains("Exit status: 0 on success; 1 when a command fails or refuses"))
    }

    /// Fail closed: an auditor pointed at the wrong directory must not read "intact" off nothing, and
    /// a read-only command creates no database, key or directory.
    @Test func auditVerifyOnNoDatabaseRefusesAndCreatesNothing() async throws {
        try await BuiltBinary.withDirectory("nodb") { directory in
            let data = directory.appendingPathComponent("data").path
            let verify = try await BuiltBinary.runFully(["audit", "verify", "--data-dir", data])
            #expect(verify.status == 1)
            #expect(verify.errors == "Error: no Steward database in the data directory \(data): nothing to read\n")
            #expect(!FileManager.default.fileExists(atPath: data))
        }
    }

    /// A command's standard error holds what the operator can act on: on PostgreSQL, not the pool
    /// library's warning that the first query asked for a connection as the pool started.
    @Test func aCommandsErrorsHoldNoLibraryNoise() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("quiet") { directory in
                let data = directory.appendingPathComponent("data").path
                let create = try await BuiltBinary.runFully(
                    ["keys", "create", "--role", "auditor", "--name", "quiet", "--data-dir", data] + database)
                #expect(create.status == 0, "\(create.errors)")
                #expect(!create.errors.contains("PostgresClient"), "\(create.errors)")
                for _ in 1...3 {
                    let list = try await BuiltBinary.runFully(["keys", "list", "--data-dir", data] + database)
                    #expect(list.status == 0, "\(list.errors)")
                    #expect(!list.errors.contains("PostgresClient"), "\(list.errors)")
                }
            }
        }
    }

    @Test func relativePathsAreResolvedAndTheErrorSaysWhereItLooked() async throws {
        try await BuiltBinary.withDirectory("elsewhere") { directory in
            let serve = try await BuiltBinary.runFully(["serve"], directory: directory, timeout: .seconds(60))
            #expect(serve.status == 1)
            let looked = directory.resolvingSymlinksInPath().appendingPathComponent("Policies").path
            #expect(serve.errors.contains("no policy directory at "), "\(serve.errors)")
            #expect(serve.errors.contains("/Policies (the default ./Policies, relative to the working directory)"))
            #expect(
                serve.errors.contains(looked)
                    || serve.errors.contains(directory.appendingPathComponent("Policies").path))
            // Nothing was created where the service would have kept its data.
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".steward").path))
        }
    }

    @Test func theDevelopmentKeyWarningOncePerServerStartAndShutdownIsLogged() async throws {
        try await BuiltBinary.withDirectory("devkey") { directory in
            let data = directory.appendingPathComponent("data").path
            let log = directory.appendingPathComponent("server.log")
            for start in 1...2 {
                let server = try ServerProcess(data: data, database: [], log: log)
                defer { server.kill() }
                try await server.waitUntilReady()
                #expect(try await server.terminate() == 0)
                let text = try String(contentsOf: log, encoding: .utf8)
                let warnings =
                    text.components(separatedBy: "generated a DEVELOPMENT root key").count - 1
                    + text.components(separatedBy: "using the DEVELOPMENT root key file").count - 1
                #expect(warnings == start, "start \(start): one warning each")
                #expect(text.components(separatedBy: "steward stopped").count - 1 == start)
                #expect(text.contains("shutdown.ms="))
            }
            // Other commands on the development key do not warn.
            let list = try await BuiltBinary.runFully(
                ["keys", "list", "--data-dir", data], environment: ["STEWARD_LOG_LEVEL": "info"])
            #expect(list.status == 0 && !list.errors.contains("DEVELOPMENT"))
        }
    }

    /// Issue 15, defect 9: the database, its WAL and the key were created 0644 in a 0755 directory.
    @Test func everythingStewardCreatesIsTheServiceUsersOnly() async throws {
        try await BuiltBinary.withDirectory("modes") { directory in
            let data = directory.appendingPathComponent("data").path
            let server = try ServerProcess(
                data: data, database: [], log: directory.appendingPathComponent("server.log"))
            defer { server.kill() }
            try await server.waitUntilReady()
            func mode(_ name: String) throws -> Int {
                try #require(FileManager.default.attributesOfItem(atPath: data + name)[.posixPermissions] as? Int)
            }
            #expect(try mode("") == 0o700)
            #expect(try mode("/root.key") == 0o400)
            for file in ["/steward.sqlite", "/steward.sqlite-wal", "/steward.sqlite-shm"] {
                #expect(try mode(file) == 0o600, "\(file)")
            }
            #expect(try await server.terminate() == 0)
            // An import's rejects file holds line numbers and reasons only, but is private all the same.
            let file = directory.appendingPathComponent("in.csv")
            try "email,purpose,decision\nnot-an-email,sale,denied\n".write(to: file, atomically: true, encoding: .utf8)
            let rejects = directory.appendingPathComponent("rejects.csv").path
            _ = try await BuiltBinary.runFully([
                "consent", "import", file.path, "--rejects", rejects, "--data-dir", data,
            ])
            let rejectsMode = try FileManager.default.attributesOfItem(atPath: rejects)[.posixPermissions] as? Int
            #expect(rejectsMode == 0o600)
            // Issue 15, defect 8: a directory given as the file is one clear line, not a Foundation error.
            let folder = try await BuiltBinary.runFully(["consent", "import", directory.path, "--data-dir", data])
            #expect(folder.status == 1)
            #expect(folder.errors == "Error: \(directory.path) is a directory; give the file to import\n")
        }
    }
}
