import Foundation
import StewardCore
import StewardServices
import Testing

/// The resident answer set's own rules (ADR 0013): what it keeps, what it drops, and that a read
/// racing a change never puts the old answer back.
@Suite struct AnswerCacheRules {
    static let purposes = ["analytics", "marketing.email", "sale"]

    func cache(budget: Int = 1 << 20) throws -> AnswerCache {
        let cache = try #require(AnswerCache(budgetBytes: budget, purposes: Self.purposes))
        cache.setServing(true)
        return cache
    }

    var generator = SplitMix64(seed: 7)

    mutating func index() -> Data {
        var bytes = Data()
        for _ in 0..<2 { withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) } }
        return bytes
    }

    mutating func subject(_ states: [(String, ConsentStatus, expires: Bool)]) -> SubjectStates {
        var bytes: [UInt8] = []
        for _ in 0..<2 { withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) } }
        let id = UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
        return SubjectStates(
            subjectID: id,
            states: states.map { purpose, status, expires in
                ConsentState(
                    subjectID: id, purpose: purpose, status: status, eventID: UUID(),
                    decidedAt: Timestamp.date(micros: 1_780_000_000_123_456),
                    expiresAt: expires ? Timestamp.date(micros: 1_790_000_000_000_001) : nil)
            })
    }

    @Test mutating func whatIsFilledIsAnsweredExactly() throws {
        let cache = try cache()
        let known = subject([
            ("analytics", .granted, true), ("sale", .withdrawn, false), ("marketing.email", .pending, true),
        ])
        let email = index()
        let nobody = index()
        #expect(cache.lookup(kind: .email, blindIndex: email) == .miss)
        cache.fill(kind: .email, blindIndex: email, found: known, ticket: cache.ticket())
        cache.fill(kind: .email, blindIndex: nobody, found: nil, ticket: cache.ticket())
        guard case .states(let read) = cache.lookup(kind: .email, blindIndex: email) else {
            Issue.record("a filled identity is not answered")
            return
        }
        #expect(read.subjectID == known.subjectID)
        #expect(Set(read.states) == Set(known.states))
        #expect(cache.lookup(subject: known.subjectID).map { Set($0.states) } == Set(known.states))
        #expect(cache.lookup(kind: .email, blindIndex: nobody) == .noSubject)
        // The same blind index of another kind is another identity.
        #expect(cache.lookup(kind: .phone, blindIndex: email) == .miss)
        // A subject with no decision is a subject, with no states.
        let undecided = subject([])
        let phone = index()
        cache.fill(kind: .phone, blindIndex: phone, found: undecided, ticket: cache.ticket())
        #expect(cache.lookup(kind: .phone, blindIndex: phone) == .states(undecided))
    }

    @Test mutating func changesDropTheirAnswersAndOnlyThose() throws {
        let cache = try cache()
        let first = subject([("analytics", .granted, false)])
        let second = subject([("analytics", .denied, false)])
        let (a, b, none) = (index(), index(), index())
        cache.fill(kind: .email, blindIndex: a, found: first, ticket: cache.ticket())
        cache.fill(kind: .email, blindIndex: b, found: second, ticket: cache.ticket())
        cache.fill(kind: .email, blindIndex: none, found: nil, ticket: cache.ticket())
        cache.invalidate([.subject(first.subjectID)])
        #expect(cache.lookup(kind: .email, blindIndex: a) == .miss)
        #expect(cache.lookup(kind: .email, blindIndex: b) == .states(second))
        // An identity bound to a subject: its "no subject" answer goes, by its tag alone.
        cache.invalidate([.identity(.email, tag: AnswerChange.tag(none))])
        #expect(cache.lookup(kind: .email, blindIndex: none) == .miss)
        #expect(cache.lookup(kind: .email, blindIndex: b) == .states(second))
        cache.invalidate([.everything])
        #expect(cache.lookup(kind: .email, blindIndex: b) == .miss)
    }

    @Test mutating func aReadThatRacedAChangeIsNotKept() throws {
        let cache = try cache()
        let person = subject([("sale", .granted, false)])
        let email = index()
        // The read starts, the withdrawal commits and is invalidated, the read's (old) answer arrives.
        let ticket = cache.ticket()
        cache.invalidate([.subject(person.subjectID)])
        cache.fill(kind: .email, blindIndex: email, found: person, ticket: ticket)
        #expect(cache.lookup(kind: .email, blindIndex: email) == .miss)
        #expect(cache.lookup(subject: person.subjectID) == nil)
        // The same for a new subject bound to an identity that was answered "no subject".
        let other = index()
        let before = cache.ticket()
        cache.invalidate([.identity(.email, tag: AnswerChange.tag(other))])
        cache.fill(kind: .email, blindIndex: other, found: nil, ticket: before)
        #expect(cache.lookup(kind: .email, blindIndex: other) == .miss)
        // And across a full drop.
        let late = cache.ticket()
        cache.invalidateAll()
        cache.fill(kind: .email, blindIndex: email, found: person, ticket: late)
        #expect(cache.lookup(kind: .email, blindIndex: email) == .miss)
        // A read that began after the change is kept.
        cache.fill(kind: .email, blindIndex: email, found: person, ticket: cache.ticket())
        #expect(cache.lookup(kind: .email, blindIndex: email) == .states(person))
    }

    @Test mutating func notServingAnswersNothingAndKeepsNothing() throws {
        let cache = try cache()
        let person = subject([("sale", .denied, false)])
        let email = index()
        cache.setServing(false)
        cache.fill(kind: .email, blindIndex: email, found: person, ticket: cache.ticket())
        cache.setServing(true)
        #expect(cache.lookup(kind: .email, blindIndex: email) == .miss)
        cache.fill(kind: .email, blindIndex: email, found: person, ticket: cache.ticket())
        cache.setServing(false)
        #expect(cache.lookup(kind: .email, blindIndex: email) == .miss)
        #expect(AnswerCache(budgetBytes: 0, purposes: Self.purposes) == nil)
    }

    @Test mutating func theBudgetBoundsMemoryAndHotSubjectsOutliveAScan() throws {
        let budget = 4 << 20
        let cache = try cache(budget: budget)
        // The whole budget is used (not the power of two below it), and no more.
        #expect(cache.allocatedBytes <= budget && cache.allocatedBytes > budget * 95 / 100, "\(cache.allocatedBytes)")
        let capacity = cache.subjectCapacity
        // Hot: a tenth of the capacity, checked again and again.
        var hot: [(Data, SubjectStates)] = []
        for _ in 0..<(capacity / 10) {
            let entry = (index(), subject([("analytics", .granted, false)]))
            hot.append(entry)
            cache.fill(kind: .email, blindIndex: entry.0, found: entry.1, ticket: cache.ticket())
        }
        for _ in 0..<4 { for (email, _) in hot { _ = cache.lookup(kind: .email, blindIndex: email) } }
        // Cold: five times the capacity, each seen once.
        for _ in 0..<(capacity * 5) {
            cache.fill(
                kind: .email, blindIndex: index(), found: subject([("sale", .denied, false)]), ticket: cache.ticket())
        }
        // The entry count is kept as slots fill and empty: the table full, less what was dropped.
        let full = cache.counters.entries
        #expect(full <= capacity && full > capacity * 9 / 10, "\(full) of \(capacity)")
        #expect(cache.counters.evictions > capacity * 3)
        let kept = hot.filter { email, person in cache.lookup(kind: .email, blindIndex: email) == .states(person) }
        #expect(Double(kept.count) > 0.9 * Double(hot.count), "\(kept.count) of \(hot.count) hot subjects kept")
        cache.invalidate([.subject(kept[0].1.subjectID)])
        #expect(cache.counters.entries == full - 1)
        cache.invalidateAll()
        #expect(cache.counters.entries == 0)
    }
}
