public import Foundation
public import Logging
import PostgresDriver
import PostgresNIO
public import StewardCore
import StewardCrypto
public import StewardServices
@_spi(Testing) import StewardPostgres
@_spi(Testing) import StewardSQLite
import Synchronization

/// Which backend the suite runs against: `STEWARD_TEST_BACKEND=postgres` (with
/// `STEWARD_TEST_DATABASE_URL`) or SQLite by default. `Scripts/test.sh` runs the suite once per backend.
public enum TestBackend: String, Sendable {
    case sqlite, postgres

    public static var current: TestBackend {
        ProcessInfo.processInfo.environment["STEWARD_TEST_BACKEND"] == "postgres" ? .postgres : .sqlite
    }
}

/// Database options for a process under test (the `steward` binary): none on SQLite (its data
/// directory holds the database); on PostgreSQL `--database` with a schema of its own, created before
/// `body` and dropped after it.
public func withScratchDatabase<T: Sendable>(_ body: @Sendable ([String]) async throws -> T) async throws -> T {
    guard TestBackend.current == .postgres else { return try await body([]) }
    guard let url = ProcessInfo.processInfo.environment["STEWARD_TEST_DATABASE_URL"] else {
        fatalError("STEWARD_TEST_BACKEND=postgres needs STEWARD_TEST_DATABASE_URL")
    }
    let schema = "cli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    let admin = PostgresClient(configuration: try PostgresURL.configuration(from: url))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await admin.run() }
        defer { group.cancelAll() }
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
        let separator = url.contains("?") ? "&" : "?"
        do {
            let result = try await body(["--database", url + separator + "search_path=" + schema])
            try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            return result
        } catch {
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            throw error
        }
    }
}

/// A clock tests move by hand.
public final class ManualClock: Sendable {
    private let value: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_790_000_000)) { value = Mutex(start) }
    public var now: Date { value.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A fresh, migrated store on the current backend, with a manual clock and a random root key.
public struct Harness: Sendable {
    public let store: any StewardStore
    public let crypto: CryptoSuite
    public let policy: PolicySet
    public let clock: ManualClock
    public let runtime: Runtime
    /// The SQLite file (nil on PostgreSQL), for tests that inspect bytes on disk.
    public let sqlitePath: String?
    /// A second instance on the same database (another SQLite connection set on the same file, or
    /// another PostgreSQL client on the same schema), when the test asked for one.
    public let peer: (any StewardStore)?
    let raw: @Sendable (String) async throws -> Void

    public var consent: ConsentService {
        ConsentService(store: store, crypto: crypto, policy: policy, runtime: runtime)
    }
    public var subjects: SubjectService { SubjectService(store: store, crypto: crypto, runtime: runtime) }
    public var keys: KeyService { KeyService(store: store, crypto: crypto, runtime: runtime) }
    public var audit: AuditLog { AuditLog(sealer: crypto.sealer, runtime: runtime) }

    /// The consent service of another instance over `store`, sharing this harness's keys and clock.
    public func consent(on store: any StewardStore) -> ConsentService {
        ConsentService(store: store, crypto: crypto, policy: policy, runtime: runtime)
    }

    public func keys(on store: any StewardStore) -> KeyService {
        KeyService(store: store, crypto: crypto, runtime: runtime)
    }

    /// Runs raw SQL against the backend (tamper drills).
    public func execute(_ sql: String) async throws { try await raw(sql) }
}

public let testLogger: Logger = {
    var logger = Logger(label: "steward.test")
    logger.logLevel = .warning
    return logger
}()

/// Runs `body` with a fresh harness and removes what it created afterwards (also on failure).
public func withHarness<T: Sendable>(
    policy: PolicySet = Fixtures.policy, peer wantsPeer: Bool = false, _ body: @Sendable (Harness) async throws -> T
) async throws -> T {
    let clock = ManualClock()
    let runtime = Runtime(
        now: { clock.now }, newID: { UUID() }, randomBytes: Runtime.live(random: KernelRandomPool()).randomBytes)
    let root = try RootKey(bytes: Data(Runtime.live(random: KernelRandomPool()).randomBytes(32)))
    switch TestBackend.current {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "steward-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("steward.sqlite").path
        let store = try SQLiteStore(path: path)
        try await store.migrate()
        let harness = Harness(
            store: store, crypto: root.suite(), policy: policy, clock: clock, runtime: runtime, sqlitePath: path,
            peer: wantsPeer ? try SQLiteStore(path: path) : nil, raw: { try await store.unsafeExecute($0) })
        return try await body(harness)
    case .postgres:
        guard let url = ProcessInfo.processInfo.environment["STEWARD_TEST_DATABASE_URL"] else {
            fatalError("STEWARD_TEST_BACKEND=postgres needs STEWARD_TEST_DATABASE_URL")
        }
        let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = PostgresClient(configuration: try PostgresURL.configuration(from: url))
        var configuration = try PostgresURL.configuration(from: url)
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        configuration.options.maximumConnections = 8
        let client = PostgresClient(configuration: configuration)
        let peerClient = wantsPeer ? PostgresClient(configuration: configuration) : nil
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            group.addTask { await client.run() }
            if let peerClient { group.addTask { await peerClient.run() } }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
            do {
                let store = PostgresStore(client: client, logger: testLogger)
                try await store.migrate()
                let harness = Harness(
                    store: store, crypto: root.suite(), policy: policy, clock: clock, runtime: runtime,
                    sqlitePath: nil, peer: peerClient.map { PostgresStore(client: $0, logger: testLogger) },
                    raw: { try await store.unsafeExecute($0) })
                let result = try await body(harness)
                try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
                return result
            } catch {
                _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
                throw error
            }
        }
    }
}

/// The policy the tests use: one purpose of each shape.
public enum Fixtures {
    public static let policy = PolicySet(
        purposes: [
            Purpose(
                key: "marketing.email", description: "Newsletters", legalBasis: .consent, mechanism: .optIn,
                doubleOptIn: true, validity: CalendarPeriod(amount: 13, unit: .month)),
            Purpose(
                key: "analytics", description: "Analytics", legalBasis: .consent, mechanism: .optIn,
                validity: CalendarPeriod(amount: 30, unit: .day)),
            Purpose(
                key: "personalization", description: "Recommendations", legalBasis: .legitimateInterests,
                mechanism: .optOut),
            Purpose(key: "sale", description: "Sale", legalBasis: .consent, mechanism: .optOut, saleOrSharing: true),
            Purpose(
                key: "sharing.ads", description: "Cross-context ads", legalBasis: .consent, mechanism: .optOut,
                saleOrSharing: true),
            Purpose(
                key: "service.receipts", description: "Receipts", legalBasis: .contract, mechanism: .noticeOnly),
        ],
        notices: [
            Notice(
                id: "privacy-policy", version: "2026-01", language: "en", url: "https://example.com/privacy",
                sha256: String(repeating: "ab", count: 32))
        ],
        digest: "fixture")

    public static let notice = PolicySet.NoticeKey(id: "privacy-policy", version: "2026-01")

    public static func email(_ text: String) -> SubjectReference {
        .identity(try! NormalizedIdentity(kind: .email, raw: text))
    }

    public static func grant(_ subject: SubjectReference, _ purpose: String, actor: String = "test")
        -> ConsentService.RecordCommand
    {
        .init(subject: subject, purpose: purpose, decision: .granted, method: .webForm, notice: notice, actor: actor)
    }

    public static func decide(
        _ subject: SubjectReference, _ purpose: String, _ decision: ConsentDecision, gpc: Bool = false
    ) -> ConsentService.RecordCommand {
        .init(
            subject: subject, purpose: purpose, decision: decision, method: .api,
            notice: decision == .granted ? notice : nil, globalPrivacyControl: gpc, actor: "test")
    }
}

public import StewardConnectors
public import StewardHTTP
import Prometheus

extension Harness {
    /// The HTTP API over this harness's store, its use cases built and metered as `serve` builds them.
    public func api(
        bulkLimits: BulkLimits = BulkLimits(),
        customerSystems: CustomerSystems = CustomerSystems(policies: "Policies", environment: [:]),
        requestExecute: RequestExecution.Execute? = nil, requestDeliver: RequestExecution.Deliver? = nil,
        requestWebhooks: Bool = false, answerCacheBytes: Int = 0,
        requestVerificationHours: Int = RequestService.defaultVerificationHours
    ) -> StewardAPI {
        let registry = PrometheusCollectorRegistry()
        return StewardAPI(
            services: UseCases(
                store: store, crypto: crypto, policy: policy, runtime: runtime,
                metrics: PrometheusMetricsFactory(registry: registry), requestExecute: requestExecute,
                requestDeliver: requestDeliver, requestWebhooks: requestWebhooks, answerCacheBytes: answerCacheBytes,
                requestVerificationHours: requestVerificationHours),
            registry: registry, bulkLimits: bulkLimits, customerSystems: customerSystems)
    }

    /// A bearer secret of a new key with `role`.
    public func key(_ role: Role) async throws -> String {
        try await keys.create(name: "test-\(role.rawValue)", role: role, actor: "test").secret
    }
}
