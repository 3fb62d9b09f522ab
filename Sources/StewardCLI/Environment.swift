import ArgumentParser
import Crypto
import Foundation
import Logging
import PostgresDriver
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
        help: ArgumentHelp(
            "Data directory for the embedded database and the development key, relative to the working directory (env STEWARD_DATA_DIR; default ./.steward).",
            valueName: "dir"))
    var dataDir: String?

    @Option(
        help: ArgumentHelp(
            "PostgreSQL URL, postgres://user:pass@host:port/db (env STEWARD_DATABASE_URL; default: embedded SQLite).",
            valueName: "url"))
    var database: String?

    @Option(
        help: ArgumentHelp(
            "Root key file, 32 bytes base64, mode 0400 (env STEWARD_ROOT_KEY_FILE; or STEWARD_ROOT_KEY with the key itself). It must be the key the data was written with; without one, a development key is generated in the data directory for a new database only.",
            valueName: "file"))
    var rootKeyFile: String?

    @Option(
        help: ArgumentHelp(
            "Policy directory, relative to the working directory (env STEWARD_POLICIES_DIR; default ./Policies).",
            valueName: "dir"))
    var policies: String?

    @Option(
        help: ArgumentHelp(
            "Log level: trace, debug, info, notice, warning, error, critical (env STEWARD_LOG_LEVEL; default info).",
            valueName: "level"))
    var logLevel: String?

    @Flag(help: "Write logs as JSON lines (env STEWARD_LOG_FORMAT=json).")
    var jsonLogs = false

    var env: [String: String] { ProcessInfo.processInfo.environment }
    var resolvedDataDir: String { dataDir ?? env["STEWARD_DATA_DIR"] ?? ".steward" }
    var resolvedDatabase: String? { database ?? env["STEWARD_DATABASE_URL"] }
    var resolvedPolicies: String { policies ?? env["STEWARD_POLICIES_DIR"] ?? "Policies" }
    /// Where the policy directory setting came from, for the error when it is missing.
    var policiesOrigin: String {
        if policies != nil { return "from --policies" }
        if env["STEWARD_POLICIES_DIR"] != nil { return "from STEWARD_POLICIES_DIR" }
        return "the default ./Policies, relative to the working directory"
    }
    var logLevelText: String? { logLevel ?? env["STEWARD_LOG_LEVEL"] }
    var resolvedLogLevel: Logger.Level? { logLevelText.flatMap { Logger.Level(rawValue: $0.lowercased()) } }

    /// A relative path resolved against the working directory, so errors and logs name the real place.
    func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
        let base = FileManager.default.currentDirectoryPath
        return ((base as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
    }

    func validate() throws {
        if let text = logLevelText, Logger.Level(rawValue: text.lowercased()) == nil {
            let origin = logLevel != nil ? "--log-level" : "STEWARD_LOG_LEVEL"
            throw ValidationError(
                "unknown log level '\(text)' (\(origin)); use one of "
                    + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let format = env["STEWARD_LOG_FORMAT"], !["json", "text"].contains(format) {
            throw ValidationError("unknown STEWARD_LOG_FORMAT '\(format)'; use json or text")
        }
    }
}

/// Where the root key comes from, found before the database is read. A development key is generated
/// only once the database is known to hold nothing (`Setup.withStore`).
enum KeySource {
    case configured(RootKey, source: String)
    case development(RootKey, path: String)
    case absent(developmentPath: String)
}

/// The composition root: the one place concrete types are chosen and wired. `Wiring.open` finds the
/// store, the policy and the key; `Setup.withStore` checks the key against the data before anything is
/// read or written, migrates, and hands the body a ready `Wiring`.
struct Wiring {
    var store: any StewardStore
    var postgres: PostgresClient?
    var crypto: CryptoSuite
    var policy: PolicySet
    var runtime: Runtime
    var logger: Logger
    /// Migrations applied by this start (0 when it did not migrate).
    var migrationsApplied: Int
    /// The development key file in use, if the key is one (serve warns about it once per start).
    var developmentKey: String?
    /// This start generated the development key (and has warned about it already).
    var generatedKey = false
    /// What the database held when the command started (before it migrated).
    var inventory: StoreInventory

    static func makeLogger(_ options: CommonOptions, label: String = "steward") -> Logger {
        let json = options.jsonLogs || options.env["STEWARD_LOG_FORMAT"] == "json"
        var logger = Logger(label: label) { LineLogHandler(label: $0, format: json ? .json : .text) }
        // `CommonOptions.validate` refused unknown levels before any command ran.
        logger.logLevel = options.resolvedLogLevel ?? .info
        return logger
    }

    /// Finds everything a command needs without writing anything; `Setup.withStore` does the rest.
    /// `readOnly` commands (audit verify) never create a database where there is none.
    static func open(_ options: CommonOptions, logger: Logger, needsPolicy: Bool = true, readOnly: Bool = false)
        throws -> Setup
    {
        let dataDir = options.absolute(options.resolvedDataDir)
        let policy: PolicySet
        if needsPolicy {
            let directory = options.absolute(options.resolvedPolicies)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw CLIError(
                    """
                    no policy directory at \(directory) (\(options.policiesOrigin)). Run from the directory that \
                    holds Policies/ or pass --policies DIR (env STEWARD_POLICIES_DIR).
                    """)
            }
            policy = try PolicyLoader.load(directory: directory) { SHA256.hash(data: $0).hexDigest }
        } else {
            policy = PolicySet(purposes: [], notices: [], digest: "")
        }
        let key = try keySource(options, dataDir: dataDir)
        if let url = options.resolvedDatabase {
            let configuration = try PostgresURL.configuration(from: url)
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            let name = "the PostgreSQL database \(configuration.database ?? "postgres") on \(configuration.host ?? "?")"
            return Setup(
                store: PostgresStore(client: client, logger: logger), postgres: client,
                postgresConfiguration: configuration, policy: policy, logger: logger, key: key, databaseName: name,
                dataDir: dataDir)
        }
        // The data directory is created only when the key is settled: a refused start leaves nothing.
        let path = (dataDir as NSString).appendingPathComponent("steward.sqlite")
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists && readOnly {
            throw CLIError("no Steward database in the data directory \(dataDir): nothing to read")
        }
        if !exists {
            try FileManager.default.createDirectory(
                atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        return Setup(
            store: try SQLiteStore(path: path), postgres: nil, postgresConfiguration: nil, policy: policy,
            logger: logger, key: key,
            databaseName: "the data directory \(dataDir) (its database steward.sqlite)", dataDir: dataDir)
    }

    static func keySource(_ options: CommonOptions, dataDir: String) throws -> KeySource {
        if let file = options.rootKeyFile ?? options.env["STEWARD_ROOT_KEY_FILE"] {
            let path = options.absolute(file)
            return .configured(try RootKey.load(file: path), source: "the key file \(path)")
        }
        if let text = options.env["STEWARD_ROOT_KEY"] {
            return .configured(try RootKey(base64: text), source: "STEWARD_ROOT_KEY")
        }
        let path = (dataDir as NSString).appendingPathComponent("root.key")
        if FileManager.default.fileExists(atPath: path) {
            return .development(try RootKey.load(file: path), path: path)
        }
        return .absent(developmentPath: path)
    }

    /// Runs `body` with the PostgreSQL client running (when there is one), then shuts it down.
    static func withClient<T: Sendable>(_ postgres: PostgresClient?, _ body: () async throws -> T) async throws -> T {
        guard let postgres else { return try await body() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    var consentService: ConsentService {
        ConsentService(store: store, crypto: crypto, policy: policy, runtime: runtime)
    }
    var auditLog: AuditLog { AuditLog(sealer: crypto.sealer, runtime: runtime) }
}

/// A command's store, policy and key, found but not yet checked against each other.
struct Setup {
    var store: any StewardStore
    var postgres: PostgresClient?
    var postgresConfiguration: PostgresClient.Configuration?
    var policy: PolicySet
    var logger: Logger
    var key: KeySource
    /// Names the database in errors ("the data directory /srv/steward (its database steward.sqlite)").
    var databaseName: String
    var dataDir: String

    var backendName: String { store.backendName }

    /// The store of a long-running process and the services that keep it: on PostgreSQL a client of
    /// its own (the start-up checks' client has stopped with them), on SQLite the same store with its
    /// writer. They go first in the process's one service group, so they stop last.
    func servingStore() -> (store: any StewardStore, services: [any Service]) {
        if let configuration = postgresConfiguration {
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return (PostgresStore(client: client, logger: logger), [client])
        }
        if let sqlite = store as? SQLiteStore { return (sqlite, [sqlite]) }
        return (store, [])
    }

    /// Checks the key against the data (`KeyBinding`) before anything else touches the database,
    /// generates a development key only for a database that holds nothing, migrates (unless
    /// `migrate` is false: read-only commands), binds the key to the data, and runs `body`.
    func withStore<T: Sendable>(migrate: Bool = true, _ body: @Sendable (Wiring) async throws -> T) async throws -> T {
        try await Wiring.withClient(postgres) {
            let inventory = try await store.inventory()
            let runtime = Runtime.live(random: KernelRandomPool())
            var root: RootKey?
            var source = ""
            var developmentKey: String?
            var generated = false
            let developmentPath: String
            switch key {
            case .configured(let key, let from):
                (root, source) = (key, from)
                developmentPath = ""
            case .development(let key, let path):
                (root, source, developmentKey) = (key, "the development key file \(path)", path)
                developmentPath = path
            case .absent(let path):
                developmentPath = path
            }
            let lookedFor =
                "--root-key-file, STEWARD_ROOT_KEY_FILE, STEWARD_ROOT_KEY and the development key file \(developmentPath)"
            let presented = root.map {
                KeyBinding.PresentedKey(
                    name: "root", checkValue: $0.checkValue, cipher: $0.suite().cipher, source: source)
            }
            let decision = try KeyBinding.decide(
                inventory: inventory, key: presented, database: databaseName, lookedFor: lookedFor)
            if root == nil && !migrate {
                // A read-only command on an empty database: nothing to read with a key, none to keep.
                root = try RootKey(bytes: Data(runtime.randomBytes(32)))
            }
            if root == nil {
                // Only an empty database gets here (`decide` refuses one with data and no key).
                try FileManager.default.createDirectory(
                    atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                root = try RootKey.generate(file: developmentPath)
                developmentKey = developmentPath
                generated = true
                logger.warning(
                    """
                    ************************************************************************
                    NO ROOT KEY CONFIGURED: generated a DEVELOPMENT root key (mode 0400).
                    Anyone with this file can read every identity in this database.
                    Production: create a key outside the data directory and pass
                    --root-key-file or STEWARD_ROOT_KEY_FILE.
                    ************************************************************************
                    """, metadata: ["key.file": "\(developmentPath)"])
            }
            guard let root else { throw CLIError("no root key") }
            let crypto = root.suite()
            var applied = 0
            if migrate {
                applied = try await store.migrate()
                let key = KeyBinding.PresentedKey(
                    name: "root", checkValue: root.checkValue, cipher: crypto.cipher,
                    source: developmentKey.map { "the development key file \($0)" } ?? source)
                if try await KeyBinding.bind(
                    key, store: store, audit: AuditLog(sealer: crypto.sealer, runtime: runtime), actor: "system",
                    database: databaseName)
                {
                    logger.info(
                        "root key bound to the data (its check value is stored; later starts with another key are refused)",
                        metadata: ["key.adopted": "\(decision == .adoptsExisting)"])
                }
            }
            return try await body(
                Wiring(
                    store: store, postgres: postgres, crypto: crypto, policy: policy, runtime: runtime, logger: logger,
                    migrationsApplied: applied, developmentKey: developmentKey, generatedKey: generated,
                    inventory: inventory))
        }
    }
}

/// An error a command reports as one line, without usage.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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

/// Writes a command's output file (`--out`): a regular file (new or existing) is replaced
/// atomically, so a reader never sees half of it; anything else that exists — `/dev/null`, a FIFO,
/// a terminal — is written in place (an atomic write would rename a regular file over it).
func writeOutput(_ text: String, to path: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return
    }
    guard !isDirectory.boolValue else { throw CLIError("\(path) is a directory; give a file name") }
    let type = (try? FileManager.default.attributesOfItem(atPath: path)[.type]) as? FileAttributeType
    if type == .typeRegular {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return
    }
    guard let handle = FileHandle(forWritingAtPath: path) else { throw CLIError("cannot write \(path)") }
    defer { try? handle.close() }
    try handle.write(contentsOf: Data(text.utf8))
}
