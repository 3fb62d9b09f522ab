import Dispatch
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Keeps this instance's `AnswerCache` current from the change feed (ADR 0013): polls
/// `answer_changes` after the position it reached, every `interval` or at once when the store wakes
/// it (PostgreSQL NOTIFY), applies what it reads, and lets the cache answer until the start of the
/// last successful poll plus `bound`. So a change committed on any instance is out of every cache
/// within `bound`, or that cache answers nothing and the check reads the store (fail closed).
///
/// A page cut short by its limit, the first poll, and the first poll after the cache stopped
/// answering (no successful poll within `bound`: whatever happened meanwhile is not trusted) drop
/// every answer: the head position is read first, then the cache is cleared, so every change up to
/// the head is covered and every later one is read next.
public final class AnswerFeedFollower: Service, Sendable {
    let store: any StewardStore
    public let cache: AnswerCache
    public let bound: Duration
    let interval: Duration
    let pruneAfter: Duration
    let logger: Logger
    let state = Mutex(Progress())

    struct Progress {
        var position: Int64?
        /// Monotonic nanoseconds at the start of the last poll that succeeded.
        var lastGood: UInt64?
        /// Monotonic nanoseconds of the last prune, or of the start: the first prune comes a minute
        /// in, not while a serve that failed to start (a taken port) is closing its store.
        var lastPrune: UInt64 = AnswerCache.monotonicNanoseconds()
        var failures = 0
        var failing = false
    }

    /// What `/ready` and `/metrics` show.
    public struct Status: Sendable, Equatable {
        public var serving: Bool
        /// Time since the start of the last successful poll, nil before the first.
        public var lag: Duration?
        public var position: Int64?
        public var failures: Int
    }

    public init(
        store: any StewardStore, cache: AnswerCache, bound: Duration = .seconds(1),
        interval: Duration = .milliseconds(100), pruneAfter: Duration = .seconds(600),
        logger: Logger
    ) {
        self.store = store
        self.cache = cache
        self.bound = bound
        self.interval = interval
        self.pruneAfter = pruneAfter
        self.logger = logger
    }

    public var status: Status {
        let progress = state.withLock { $0 }
        let now = AnswerCache.monotonicNanoseconds()
        return Status(
            serving: cache.isServing,
            lag: progress.lastGood.map { .nanoseconds(Int64(now &- $0)) }, position: progress.position,
            failures: progress.failures)
    }

    public func run() async throws {
        // One stream of reasons to poll, coalesced: the interval's ticks and the store's wake-ups.
        let (pokes, poke) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let wakeups = store.answerWakeups()
        let interval = self.interval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in wakeups { poke.yield() }
            }
            group.addTask {
                while (try? await Task.sleep(for: interval)) != nil { poke.yield() }
            }
            poke.yield()
            for await _ in pokes.cancelOnGracefulShutdown() {
                await pollOnce()
                await pruneIfDue()
            }
            group.cancelAll()
        }
        cache.serve(until: 0)
    }

    /// One poll of the feed; true when it succeeded.
    @discardableResult
    public func pollOnce() async -> Bool {
        let started = AnswerCache.monotonicNanoseconds()
        let progress = state.withLock { $0 }
        do {
            var position: Int64
            let stale = progress.lastGood.map { started &- $0 > Self.nanoseconds(bound) } ?? true
            if let known = progress.position, !stale {
                let page = try await store.answerChanges(after: known, limit: 10_000)
                if page.complete {
                    cache.invalidate(page.changes)
                    position = page.position
                } else {
                    position = try await restart()
                }
            } else {
                position = try await restart()
            }
            state.withLock {
                $0.position = position
                $0.lastGood = started
                $0.failing = false
            }
            if progress.failing { logger.notice("answer feed readable again: consent checks answered from memory") }
            cache.serve(until: started &+ Self.nanoseconds(bound))
            return true
        } catch {
            let first = state.withLock { progress -> Bool in
                progress.failures += 1
                defer { progress.failing = true }
                return !progress.failing
            }
            if first {
                logger.warning(
                    "answer feed unreadable: consent checks read the store until it is back",
                    metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            }
            return false
        }
    }

    /// Every answer dropped, the feed followed from its head: the head is read before the cache is
    /// cleared, so every change up to it is covered and every later one is read next.
    func restart() async throws -> Int64 {
        let head = try await store.answerFeedPosition()
        cache.invalidateAll()
        return head
    }

    func pruneIfDue() async {
        let now = AnswerCache.monotonicNanoseconds()
        let due = state.withLock { progress -> Bool in
            guard now &- progress.lastPrune > 60_000_000_000 else { return false }
            progress.lastPrune = now
            return true
        }
        guard due else { return }
        do {
            try await store.pruneAnswerChanges(
                before: Date().addingTimeInterval(-Double(pruneAfter.components.seconds)))
        } catch {
            logger.warning(
                "answer feed prune failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
        }
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
