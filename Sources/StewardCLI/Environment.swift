import ArgumentParser
import Crypto
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StewardCore
import StewardCrypto
import StewardPolicy
import StewardPostgres
import StewardServices
import StewardSQLite

/// Options every command shares. Each falls back to an environment variable, then a default.
struct CommonOptions: ParsableArguments {
    @Option(
        help:
            "Data directory for the embedded database and the development key (env STEWARD_DATA_DIR; default ./.steward)."
    )
    var dataDir: String?

    @Option(
        help: "PostgreSQL URL, postgres://user:pass@host:port/db (env STEWARD_DATABASE_URL; default: embedded SQLite).")
    var database: String?

    @Option(
        help:
            "Root key file, 32 bytes base64, mode 0400 (env STEWARD_ROOT_KEY_FILE; or STEWARD_ROOT_KEY with the key itself)."
    )
    var rootKeyFile: String?

    @Option(help: "Policy directory (env STEWARD_POLICIES_DIR; default ./Policies).")
    var policies: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env STEWARD_LOG_LEVEL; default info).")
    var logLevel: String?

    @Flag(help: "Write logs as JSON lines (env STEWARD_LOG_FORMAT=json).")
    var jsonLogs = false

    var env: [String: String] { ProcessInfo.processInfo.environment }
    var resolvedDataDir: String { dataDir ?? env["STEWARD_DATA_DIR"] ?? ".steward" }
    var resolvedDatabase: String? { database ?? env["STEWARD_DATABASE_URL"] }
    var resolvedPolicies: String { policies ?? env["STEWARD_POLICIES_DIR"] ?? "Policies" }
}

/// The composition root: the one place concrete types are chosen and wired.
struct Wiring {
    var store: any StewardStore
    var postgres: PostgresClient?
    var crypto: CryptoSuite
    var policy: PolicySet
    var runtime: Runtime
    var logger: Logger

    static func makeLogger(_ options: CommonOptions, label: String = "steward") -> Logger {
        let json = options.jsonLogs || options.env["STEWARD_LOG_FORMAT"] == "json"
        var logger = Logger(label: label) { LineLogHandler(label: $0, format: json ? .json : .text) }
        logger.logLevel =
            Logger.Level(rawValue: options.logLevel ?? options.env["STEWARD_LOG_LEVEL"] ?? "info") ?? .info
        return logger
    }

    /// Opens everything a command needs; the caller runs `postgres` (if any) while it works.
    static func open(_ options: CommonOptions, logger: Logger, needsPolicy: Bool = true) throws -> Wiring {
        let runtime = Runtime.live
        let dataDir = options.resolvedDataDir
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let root = try loadRootKey(options, dataDir: dataDir, logger: logger)
        let crypto = root.suite()
        let policy: PolicySet
        if needsPolicy {
            policy = try PolicyLoader.load(directory: options.resolvedPolicies) { SHA256.hash(data: $0).hexDigest }
        } else {
            policy = PolicySet(purposes: [], notices: [], digest: "")
        }
        if let url = options.resolvedDatabase {
            let client = PostgresClient(
                configuration: try PostgresURL.configuration(from: url), backgroundLogger: logger)
            return Wiring(
                store: PostgresStore(client: client, logger: logger), postgres: client, crypto: crypto, policy: policy,
                runtime: runtime, logger: logger)
        }
        let path = (dataDir as NSString).appendingPathComponent("steward.sqlite")
        return Wiring(
            store: try SQLiteStore(path: path), postgres: nil, crypto: crypto, policy: policy, runtime: runtime,
            logger: logger)
    }

    static func loadRootKey(_ options: CommonOptions, dataDir: String, logger: Logger) throws -> RootKey {
        if let file = options.rootKeyFile ?? options.env["STEWARD_ROOT_KEY_FILE"] {
            return try RootKey.load(file: file)
        }
        if let text = options.env["STEWARD_ROOT_KEY"] {
            return try RootKey(base64: text)
        }
        let path = (dataDir as NSString).appendingPathComponent("root.key")
        if FileManager.default.fileExists(atPath: path) {
            logger.warning(
                "using the DEVELOPMENT root key file; production must pass --root-key-file or STEWARD_ROOT_KEY_FILE",
                metadata: ["key.file": "\(path)"])
            return try RootKey.load(file: path)
        }
        logger.warning(
            """
            ************************************************************************
            NO ROOT KEY CONFIGURED: generated a DEVELOPMENT root key (mode 0400).
            Anyone with this file can read every identity in this database.
            Production: create a key outside the data directory and pass
            --root-key-file or STEWARD_ROOT_KEY_FILE.
            ************************************************************************
            """, metadata: ["key.file": "\(path)"])
        return try RootKey.generate(file: path)
    }

    /// Runs `body` with the PostgreSQL client running (when there is one), then shuts it down.
    func withStore<T: Sendable>(_ body: @Sendable (Wiring) async throws -> T) async throws -> T {
        guard let postgres else { return try await body(self) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            defer { group.cancelAll() }
            return try await body(self)
        }
    }

    var consentService: ConsentService {
        ConsentService(store: store, crypto: crypto, policy: policy, runtime: runtime)
    }
    var auditLog: AuditLog { AuditLog(sealer: crypto.sealer, runtime: runtime) }
}

extension SHA256.Digest {
    var hexDigest: String { Data(self).hexString }
}

/// The actor recorded for commands run by an operator at the command line.
var cliActor: String { "cli:\(ProcessInfo.processInfo.environment["USER"] ?? "operator")" }

/// Prints to standard error (progress, warnings), keeping standard output for results.
func printErr(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}
