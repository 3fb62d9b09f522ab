public import Foundation
public import Metrics
public import StewardCore

/// A store that counts its failures: `steward_database_errors_total{backend, kind}`, where kind is
/// `unique_violation` (a lost first-sight race, retried), `unavailable` or `other`. Errors the
/// services raise inside a transaction (`StewardError`) and cancellations are not database errors
/// and are not counted. Labels carry no values from the data.
public struct MeteredStore: StewardStore {
    public let base: any StewardStore
    let factory: any MetricsFactory

    public init(_ base: any StewardStore, factory: any MetricsFactory) {
        self.base = base
        self.factory = factory
    }

    public var backendName: String { base.backendName }

    func counted<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            record(error)
            throw error
        }
    }

    func record(_ error: any Error) {
        if error is StewardError || error is CancellationError { return }
        let kind: String
        switch error as? StoreError {
        case .uniqueViolation: kind = "unique_violation"
        case .conflict: kind = "conflict"
        case .unavailable: kind = "unavailable"
        case .integrity: kind = "integrity"
        case nil: kind = "other"
        }
        Counter(
            label: "steward_database_errors_total", dimensions: [("backend", base.backendName), ("kind", kind)],
            factory: factory
        ).increment()
    }

    @discardableResult public func migrate() async throws -> Int { try await counted { try await base.migrate() } }
    public func ping() async throws { try await counted { try await base.ping() } }
    public func inventory() async throws -> StoreInventory { try await counted { try await base.inventory() } }
    public func maintain() async throws { try await counted { try await base.maintain() } }
    public func warm() async throws -> Int? { try await counted { try await base.warm() } }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T {
        try await counted { try await base.read(body) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws
        -> T
    {
        try await counted { try await base.write(body) }
    }

    public func subjectStates(kind: IdentityKind, blindIndex: Data) async throws -> SubjectStates? {
        try await counted { try await base.subjectStates(kind: kind, blindIndex: blindIndex) }
    }

    public func observeAnswerChanges(_ observer: @escaping @Sendable ([AnswerChange]) -> Void) {
        base.observeAnswerChanges(observer)
    }

    public func answerChanges(after position: Int64, limit: Int) async throws -> AnswerFeedPage {
        try await counted { try await base.answerChanges(after: position, limit: limit) }
    }

    public func pruneAnswerChanges(before date: Date) async throws {
        try await counted { try await base.pruneAnswerChanges(before: date) }
    }

    public func answerFeedPosition() async throws -> Int64 {
        try await counted { try await base.answerFeedPosition() }
    }

    public func answerWakeups() -> AsyncStream<Void> { base.answerWakeups() }

    public func apiKey(hash: Data) async throws -> (record: APIKeyRecord, storedHash: Data)? {
        try await counted { try await base.apiKey(hash: hash) }
    }
}
