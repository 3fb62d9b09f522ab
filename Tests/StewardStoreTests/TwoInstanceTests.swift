import Foundation
import StewardCore
import StewardServices
import StewardTesting
import Testing

/// Issue 19, item 5: two instances on one database, each with its own resident answer set kept by
/// its own change-feed follower. A withdrawal recorded on A is answered "not allowed" by B within the
/// bound, every time; A answers it at once; B cut off from the feed stops answering from memory
/// within the bound and reads the store.
@Suite struct TwoInstances {
    struct Instance {
        let consent: ConsentService
        let cache: AnswerCache
        let follower: AnswerFeedFollower
    }

    static func instance(_ store: any StewardStore, _ h: Harness) throws -> Instance {
        let cache = try #require(
            AnswerCache(
                budgetBytes: 8 << 20,
                purposes: h.policy.sortedPurposes.filter { $0.mechanism != .noticeOnly }.map(\.key)))
        store.observeAnswerChanges { cache.invalidate($0) }
        return Instance(
            consent: ConsentService(
                store: store, crypto: h.crypto, policy: h.policy, runtime: h.runtime, answers: cache),
            cache: cache, follower: AnswerFeedFollower(store: store, cache: cache, logger: testLogger))
    }

    /// Runs both followers while `body` runs, once both answer from memory.
    static func withInstances(
        _ h: Harness, _ body: @Sendable (Instance, Instance) async throws -> Void
    ) async throws {
        let a = try instance(h.store, h)
        let b = try instance(try #require(h.peer), h)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await a.follower.run() }
            group.addTask { try await b.follower.run() }
            defer { group.cancelAll() }
            try await until("both instances answer from memory") { a.cache.isServing && b.cache.isServing }
            try await body(a, b)
        }
    }

    static func until(_ what: String, within: Duration = .seconds(30), _ condition: () async throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + within
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw Timeout(what: what) }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    struct Timeout: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out: \(what)" }
    }

    @Test func aWithdrawalOnOneInstanceIsAnsweredOnTheOtherWithinTheBound() async throws {
        try await withHarness(peer: true) { h in
            try await Self.withInstances(h) { a, b in
                // PostgreSQL's NOTIFY wakes the follower at once: the issue's 1,000 trials. SQLite's
                // followers poll every 100 ms, so fewer trials there.
                let trials = TestBackend.current == .postgres ? 1_000 : 100
                var worst: Duration = .zero
                var elapsed: [Duration] = []
                for trial in 0..<trials {
                    let person = Fixtures.email("trial\(trial)@example.com")
                    _ = try await a.consent.record(Fixtures.grant(person, "analytics"))
                    // B learns of the grant through the feed, then answers it from memory. (A read that
                    // raced the grant's feed entry is not kept: B checks once it has read that far.)
                    let head = try await h.store.answerFeedPosition()
                    try await Self.until("B has read the grant's feed entry") {
                        (b.follower.status.position ?? 0) >= head
                    }
                    let index = h.crypto.indexer.index(
                        try NormalizedIdentity(kind: .email, raw: "trial\(trial)@example.com"))
                    try await Self.until("B holds the grant in memory") {
                        guard try await b.consent.check(person, purpose: "analytics").allowed else { return false }
                        if case .states = b.cache.lookup(kind: .email, blindIndex: index) { return true }
                        return false
                    }
                    guard case .states(let held) = b.cache.lookup(kind: .email, blindIndex: index) else {
                        Issue.record("B does not hold the grant in memory (trial \(trial))")
                        return
                    }
                    #expect(held.state("analytics")?.status == .granted)
                    _ = try await a.consent.record(Fixtures.decide(person, "analytics", .withdrawn))
                    let recorded = ContinuousClock.now
                    // The writing instance answers it at once.
                    #expect(try await a.consent.check(person, purpose: "analytics").allowed == false)
                    // Every answer B gives from a check begun later than the bound after the
                    // withdrawal must be "not allowed". (A check begun within it may still answer
                    // the grant; the time counted is when the first "not allowed" check began, so
                    // a loaded run's scheduling delays are not counted against B.)
                    var took: Duration = .zero
                    var lateGrant: Duration?
                    try await Self.until("B sees the withdrawal") {
                        let began = ContinuousClock.now
                        let allowed = try await b.consent.check(person, purpose: "analytics").allowed
                        took = began - recorded
                        if allowed && took > b.follower.bound { lateGrant = took }
                        return !allowed
                    }
                    #expect(
                        lateGrant == nil,
                        "trial \(trial): B answered allowed to a check begun \(String(describing: lateGrant)) after")
                    elapsed.append(took)
                    worst = max(worst, took)
                }
                elapsed.sort()
                print(
                    "two instances (\(h.store.backendName)): \(trials) withdrawals seen by the other instance in p50 \(elapsed[trials / 2]), p99 \(elapsed[trials * 99 / 100]), worst \(worst)"
                )
                #expect(b.cache.counters.hits > trials)
            }
        }
    }

    @Test func anInstanceCutOffFromTheFeedAnswersFromTheStore() async throws {
        try await withHarness(peer: true) { h in
            try await Self.withInstances(h) { a, b in
                let person = Fixtures.email("cut@example.com")
                _ = try await a.consent.record(Fixtures.grant(person, "analytics"))
                try await Self.until("B sees the grant") {
                    try await b.consent.check(person, purpose: "analytics").allowed
                }
                // The feed becomes unreadable (its table is gone): B stops answering from memory
                // within the bound.
                try await h.execute("ALTER TABLE answer_changes RENAME TO answer_changes_cut")
                let cut = ContinuousClock.now
                try await Self.until("B stops answering from memory") { !b.cache.isServing }
                let stopped = ContinuousClock.now - cut
                // The cache's own deadline is the bound exactly; this measure adds the test's own
                // scheduling (a loaded parallel run), so it allows a second more.
                #expect(stopped <= b.follower.bound + .seconds(1), "B answered from memory for \(stopped)")
                #expect(b.follower.status.serving == false && b.follower.status.failures > 0)
                // A change B cannot hear about (written past the feed): B answers it from the store.
                try await h.execute(
                    "UPDATE consent_state SET status = 'withdrawn' WHERE purpose = 'analytics'")
                let hits = b.cache.counters.hits
                #expect(try await b.consent.check(person, purpose: "analytics").allowed == false)
                #expect(b.cache.counters.hits == hits)
                // The feed is back: B answers from memory again, after dropping what it held.
                try await h.execute("ALTER TABLE answer_changes_cut RENAME TO answer_changes")
                try await Self.until("B answers from memory again") { b.cache.isServing }
                #expect(try await b.consent.check(person, purpose: "analytics").allowed == false)
                #expect(try await b.consent.check(person, purpose: "analytics").allowed == false)
                #expect(b.cache.counters.hits > hits)
            }
        }
    }
}
