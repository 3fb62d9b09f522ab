import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import UnixSignals
import Prometheus
import ServiceLifecycle
import StewardConnectors
import StewardCore
import StewardHTTP
import StewardPolicy
import StewardServices

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP API (migrates the database first).")

    @OptionGroup var common: CommonOptions

    @Option(help: "Address to listen on (env STEWARD_HTTP_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (env STEWARD_HTTP_PORT; default 8080).")
    var port: Int?

    func run() async throws {
        let logger = Wiring.makeLogger(common)
        let setup = try Wiring.open(common, logger: logger)
        let host = self.host ?? common.env["STEWARD_HTTP_HOST"] ?? "127.0.0.1"
        let port = self.port ?? common.env["STEWARD_HTTP_PORT"].flatMap(Int.init) ?? 8080
        let limits: HTTPLimits
        let bulkLimits: BulkLimits
        let jobs: JobRunner.Configuration
        let answerCacheMiB = common.env["STEWARD_ANSWER_CACHE_MB"].map { Int($0) } ?? 64
        guard let answerCacheMiB, (0...65_536).contains(answerCacheMiB) else {
            throw ValidationError(
                "STEWARD_ANSWER_CACHE_MB must be a whole number of MiB from 0 (no resident answer set) to 65536")
        }
        do {
            limits = try HTTPLimits(environment: common.env)
            bulkLimits = try BulkLimits(environment: common.env)
            jobs = try JobRunner.Configuration(environment: common.env)
        } catch {
            throw ValidationError("\(error)")
        }
        let descriptors = raiseDescriptorLimit()
        let shutdown = ShutdownWatch()
        // Start-up: the key checked against the data, migrations, the policy load audited — with the
        // store open for this phase only. Then the one service group runs everything long-lived.
        let wiring = try await setup.withStore { wiring in
            if let file = wiring.developmentKey, !wiring.generatedKey {
                logger.warning(
                    "using the DEVELOPMENT root key file; production must pass --root-key-file or STEWARD_ROOT_KEY_FILE",
                    metadata: ["key.file": "\(file)"])
            }
            if setup.postgres == nil,
                let mode = (try? FileManager.default.attributesOfItem(atPath: setup.dataDir))?[.posixPermissions]
                    as? Int,
                mode & 0o077 != 0
            {
                logger.warning(
                    "the data directory is open to group or others; chmod 700 it (it holds the database and may hold the key)",
                    metadata: ["data.dir": "\(setup.dataDir)", "mode": "\(String(mode, radix: 8))"])
            }
            try await wiring.auditLog.recordPolicyLoad(wiring.policy, store: wiring.store, actor: "system")
            return wiring
        }
        logger.info(
            "steward starting",
            metadata: [
                "version": "\(StewardVersion.current)", "database": "\(wiring.store.backendName)",
                "data.dir": "\(setup.dataDir)",
                "migrations.applied": "\(wiring.migrationsApplied)",
                "policy.purposes": "\(wiring.policy.purposes.count)", "http.address": "\(host):\(port)",
                "http.max_connections": "\(limits.maxConnections)", "http.idle_timeout": "\(limits.idleTimeout)",
                "http.body_timeout": "\(limits.bodyTimeout)", "process.max_descriptors": "\(descriptors)",
            ])
        if descriptors < limits.maxConnections + 64 {
            logger.warning(
                "the descriptor limit is below STEWARD_HTTP_MAX_CONNECTIONS: connections past it fail to be accepted; raise `ulimit -n` or lower the setting",
                metadata: ["process.max_descriptors": "\(descriptors)"])
        }
        for warning in holidayWarnings(wiring.policy.regimes, now: Date()) { logger.warning("\(warning)") }
        // The composition root: every use case built once over the serving store, metered on the
        // registry /metrics serves.
        let (store, storeServices) = setup.servingStore()
        let wakeup = JobWakeup()
        let registry = PrometheusCollectorRegistry()
        let metrics = PrometheusMetricsFactory(registry: registry)
        let webhook = try RequestWiring.webhook(common.env)
        let customerSystems = CustomerSystems(
            policies: common.absolute(common.resolvedPolicies), environment: common.env)
        let services = UseCases(
            store: store, crypto: wiring.crypto, policy: wiring.policy, runtime: wiring.runtime, metrics: metrics,
            jobWakeup: wakeup,
            requestExecute: RequestWiring.execute(map: wiring.policy.dataMap, systems: customerSystems),
            requestDeliver: try RequestWiring.deliver(map: wiring.policy.dataMap, systems: customerSystems),
            requestPackageDays: try RequestWiring.packageDays(common.env), requestWebhooks: webhook != nil,
            answerCacheBytes: answerCacheMiB << 20,
            requestVerificationHours: try RequestWiring.verificationHours(common.env))
        let follower = services.answers.map { AnswerFeedFollower(store: services.store, cache: $0, logger: logger) }
        let api = StewardAPI(
            services: services, registry: registry, bulkLimits: bulkLimits, customerSystems: customerSystems,
            answerFeed: follower)
        // Every long task runs on the job queue; this instance's runner is woken at once by jobs
        // enqueued here, by polling for jobs enqueued by others.
        let runner = JobRunner(
            store: services.store, runtime: wiring.runtime, configuration: jobs, wakeup: wakeup, metrics: metrics,
            logger: logger
        ).registering(ProbeJob(audit: services.audit)).registering(RequestTaskJob(service: services.requests))
            .registering(webhooks: webhook)
        let app = buildApplication(api: api, host: host, port: port, limits: limits, logger: logger)
        // One group, started in this order and stopped in the reverse on SIGTERM or SIGINT: the HTTP
        // server stops taking requests first, then the job runner lets its jobs reach a checkpoint and
        // releases them, then maintenance, and the store (SQLite's writer commits what is queued;
        // PostgreSQL's pool closes) last. Any service failing stops the group.
        let group = ServiceGroup(
            configuration: .init(
                services: (storeServices + [
                    StoreMaintenance(store: services.store, logger: logger),
                    RequestHousekeeping(requests: services.requests, logger: logger), runner,
                ] + (follower.map { [$0] } ?? []) + [app])
                .map { .init(service: $0) } + [.init(service: shutdown)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw CLIError(
                "port \(port) on \(host) is already in use (another steward?); choose another with --port or STEWARD_HTTP_PORT"
            )
        }
        logger.info(
            "steward stopped",
            metadata: shutdown.elapsedMilliseconds.map { ["shutdown.ms": "\($0)"] } ?? [:])
    }
}

/// Notes when graceful shutdown (SIGTERM, SIGINT) begins, so `serve` can log how long it took.
final class ShutdownWatch: Service, Sendable {
    private let began = Mutex<ContinuousClock.Instant?>(nil)

    func run() async throws {
        try? await gracefulShutdown()
        began.withLock { $0 = ContinuousClock.now }
    }

    /// Milliseconds from the signal to now, or nil when shutdown did not start by a signal.
    var elapsedMilliseconds: Int? {
        began.withLock { $0 }.map { Int((ContinuousClock.now - $0) / .milliseconds(1)) }
    }
}

struct Errors: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the catalogue of error codes (Markdown; Docs/Errors.md is its output).")

    func run() throws { print(StewardError.Code.catalogueMarkdown(), terminator: "") }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = Wiring.makeLogger(common)
        let setup = try Wiring.open(common, logger: logger, needsPolicy: false)
        let applied = try await setup.withStore { $0.migrationsApplied }
        print("migrated \(setup.databaseName): \(applied) migration(s) applied")
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key; the secret is printed once, on the last line.",
            discussion: "Roles and what each may do:\n\n"
                + Role.allCases.map { "\($0.rawValue) — \($0.summary)." }.joined(separator: "\n\n"))
        @OptionGroup var common: CommonOptions
        @Option(help: "Role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")) (see below).") var role: String
        @Option(help: "A name that says who uses the key.") var name: String
        @Flag(help: "Print JSON for scripts.") var json = false

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError(
                    "unknown role '\(role)'; use one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("unknown role '\(role)'") }
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let (record, secret) = try await wiring.withStore { wiring in
                try await KeyService(store: wiring.store, crypto: wiring.crypto, runtime: wiring.runtime)
                    .create(name: name, role: role, actor: cliActor)
            }
            if json {
                let object: [String: String] = [
                    "id": record.id.lowercasedString, "name": record.name, "role": record.role.rawValue,
                    "secret": secret,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("created API key \(record.id.lowercasedString) (\(record.role.rawValue), \"\(record.name)\")")
                print("store the secret now: it is shown once and cannot be recovered")
                print(secret)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys (never their secrets).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let keys = try await wiring.withStore { wiring in
                try await KeyService(store: wiring.store, crypto: wiring.crypto, runtime: wiring.runtime).list()
            }
            for key in keys {
                let state = key.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
                print("\(key.id.lowercasedString)  \(key.prefix)…  \(key.role.rawValue)  \(state)  \(key.name)")
            }
            print("\(keys.count) key(s), \(keys.filter { $0.revokedAt == nil }.count) active")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key by id.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The key id (from `steward keys list`).") var id: String

        func validate() throws {
            guard UUID(uuidString: id) != nil else { throw ValidationError("'\(id)' is not a key id") }
        }

        func run() async throws {
            guard let uuid = UUID(uuidString: id) else { throw ValidationError("'\(id)' is not a key id") }
            let wiring = try Wiring.open(common, logger: Wiring.makeLogger(common), needsPolicy: false)
            let record = try await wiring.withStore { wiring in
                try await KeyService(store: wiring.store, crypto: wiring.crypto, runtime: wiring.runtime)
                    .revoke(id: uuid, actor: cliActor)
            }
            print("revoked API key \(record.id.lowercasedString) (\(record.name)); requests with it now get 401")
        }
    }
}

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Validate policies; print the API document they shape.",
        subcommands: [Check.self, OpenAPI.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the policy directory; exit 1 with every issue on failure.")
        @OptionGroup var common: CommonOptions
        @Flag(
            help:
                "Also report minimisation findings (personal fields no purpose uses, systems without an owner, purposes no system uses, sensitive fields stored unprotected) and fail on any."
        )
        var strict = false

        func run() async throws {
            do {
                let policy = try PolicyLoader.load(directory: common.resolvedPolicies) { _ in "" }
                let map = policy.dataMap
                let collections = map.systems.flatMap(\.collections)
                let fields = collections.flatMap(\.fields)
                print(
                    "policy OK: \(policy.purposes.count) purposes, \(policy.notices.count) notices, "
                        + "\(map.taxonomy.order.count) data categories, \(map.systems.count) systems "
                        + "(\(collections.count) collections, \(fields.count) fields, "
                        + "\(fields.filter(map.isPersonal).count) personal, each with an erasure strategy), "
                        + "\(policy.regimes.count) request regime\(policy.regimes.count == 1 ? "" : "s") "
                        + "in \(common.resolvedPolicies)")
                for warning in holidayWarnings(policy.regimes, now: Date()) { printErr("warning: \(warning)") }
                if strict {
                    let findings = map.minimisation(purposes: Array(policy.purposes.keys))
                    for finding in findings { print(finding.description) }
                    if !findings.isEmpty {
                        printErr("\(findings.count) minimisation finding(s) (--strict): see above")
                        throw ExitCode(1)
                    }
                    print("no minimisation findings")
                }
            } catch let error as PolicyError {
                printErr(error.description)
                throw ExitCode(1)
            }
        }
    }
}

extension PolicyCommand {
    struct OpenAPI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "openapi",
            abstract: "Print the OpenAPI document the server would serve with this policy.",
            discussion: """
                The purposes and notices of the policy are its enumerations, so a client generated from it \
                knows the values this deployment accepts. Docs/openapi.json is this command's output for the \
                default policy.
                """)
        @OptionGroup var common: CommonOptions
        @Flag(
            help:
                "Also report minimisation findings (personal fields no purpose uses, systems without an owner, purposes no system uses, sensitive fields stored unprotected) and fail on any."
        )
        var strict = false

        func run() async throws {
            do {
                let policy = try PolicyLoader.load(directory: common.resolvedPolicies) { _ in "" }
                print(OpenAPIRendering.document(policy: policy), terminator: "")
            } catch let error as PolicyError {
                printErr(error.description)
                throw ExitCode(1)
            }
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Work with the audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the audit hash chain; exit 1 naming the first broken entry.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let wiring = try Wiring.open(
                common, logger: Wiring.makeLogger(common), needsPolicy: false, readOnly: true)
            let databaseName = wiring.databaseName
            let result = try await wiring.withStore(migrate: false) { wiring in
                // An auditor pointed at the wrong place must not read "intact" off an empty database.
                guard wiring.inventory.schemaVersion > 0 else {
                    throw CLIError("no Steward database in \(databaseName): nothing to verify")
                }
                return try await wiring.auditLog.verify(store: wiring.store) { checked in
                    printErr("\rverified \(checked) entries…", terminator: "")
                }
            }
            printErr("")
            if let broken = result.firstBroken {
                print(
                    "audit chain BROKEN at entry \(broken): \(result.reason ?? "mismatch") (\(result.checked) entries before it verified)"
                )
                throw ExitCode(1)
            }
            print("audit chain intact: \(result.checked) entries verified")
        }
    }
}

/// Raises the soft limit on open descriptors to the hard limit (each connection holds one), and
/// returns the limit now in force.
func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return Int(clamping: limit.rlim_cur)
}

/// A warning per regime whose holiday list ends before a request received today can fall due.
func holidayWarnings(_ regimes: [Regime], now: Date) -> [String] {
    regimes.compactMap { regime in
        let today = CivilDate(now, in: regime.calendar.zone)
        guard let year = regime.uncoveredYear(receivedOn: today) else { return nil }
        return
            "regime \(regime.key) lists holidays through \(year - 1), and a request received today can fall due as late as \(regime.horizon(receivedOn: today)): add \(year)'s holidays to requests.yaml (without them, deadlines in \(year) count no holidays)"
    }
}
