import Foundation
import StewardCore
import StewardServices
import StewardTesting
import Synchronization
import Testing

/// The change feed of the consent check's answers (ADR 0013), on the backend the run selects: every
/// committed change is in it, in commit order, seen by another instance on the same database; this
/// instance's observer hears it before the write returns; a write that fails publishes nothing.
@Suite struct AnswerFeed {
    @Test func committedChangesAreInTheFeedInCommitOrderAndObservedBeforeTheWriteReturns() async throws {
        try await withHarness(peer: true) { h in
            let heard = Mutex<[[AnswerChange]]>([])
            h.store.observeAnswerChanges { changes in heard.withLock { $0.append(changes) } }
            let peer = try #require(h.peer)
            let start = try await peer.answerChanges(after: 0, limit: 1_000)
            // A new subject: its identity bound, its state written.
            let ada = Fixtures.email("ada@example.com")
            let first = try await h.consent.record(Fixtures.decide(ada, "sale", .denied))
            var observed = heard.withLock { $0 }
            #expect(observed.count == 1)
            let identity = try #require(
                observed.first?.first { if case .identity = $0 { true } else { false } })
            #expect(Set(observed[0]) == [.subject(first.subjectID), identity])
            let afterFirst = try await peer.answerChanges(after: start.position, limit: 1_000)
            #expect(Set(afterFirst.changes) == Set(observed[0]) && afterFirst.complete)
            #expect(afterFirst.position > start.position)
            // A known subject: its state only. Read from the position the last read reached.
            _ = try await h.consent.record(Fixtures.decide(ada, "analytics", .denied))
            let second = try await peer.answerChanges(after: afterFirst.position, limit: 1_000)
            #expect(second.changes == [.subject(first.subjectID)])
            #expect(second.position > afterFirst.position)
            // A write that fails publishes nothing and is not observed.
            observed = heard.withLock { $0 }
            await #expect(throws: (any Error).self) {
                _ = try await h.consent.record(Fixtures.decide(.id(UUID()), "sale", .denied))
            }
            #expect(heard.withLock { $0.count } == observed.count)
            let none = try await peer.answerChanges(after: second.position, limit: 1_000)
            #expect(none.changes.isEmpty && none.position == second.position)
            // A merge changes both subjects.
            let grace = try await h.consent.record(
                Fixtures.decide(Fixtures.email("grace@example.com"), "sale", .denied))
            let beforeMerge = try await peer.answerChanges(after: second.position, limit: 1_000).position
            _ = try await h.subjects.merge(source: grace.subjectID, into: first.subjectID, actor: "test")
            let merged = try await peer.answerChanges(after: beforeMerge, limit: 1_000)
            #expect(Set(merged.changes).isSuperset(of: [.subject(grace.subjectID), .subject(first.subjectID)]))
            // A page cut short by its limit says so.
            let short = try await peer.answerChanges(after: start.position, limit: 2)
            #expect(!short.complete && short.changes.count == 2)
            // Old rows are pruned; the position is kept.
            try await h.store.pruneAnswerChanges(before: Date().addingTimeInterval(60))
            #expect(try await peer.answerChanges(after: start.position, limit: 1_000).changes.isEmpty)
        }
    }

    @Test func aLargeBatchPublishesEverything() async throws {
        try await withHarness { h in
            let before = try await h.store.answerChanges(after: 0, limit: 10_000).position
            let lines = (0..<(AnswerChange.maxPerTransaction + 10)).map {
                Fixtures.decide(Fixtures.email("bulk\($0)@example.com"), "sale", .denied)
            }
            let outcome = try await h.consent.recordPrepared(
                h.consent.prepareBulk(lines.enumerated().map { .command(line: $0 + 1, $1) }), batchSize: 10_000)
            #expect(outcome.accepted == lines.count)
            let page = try await h.store.answerChanges(after: before, limit: 10_000)
            #expect(page.changes == [.everything])
        }
    }
}
