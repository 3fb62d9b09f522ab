import Dispatch
public import Foundation
public import StewardCore
import Synchronization

/// What a committed write changed for the consent check, as the change feed carries it (ADR 0013):
/// a subject's states (or the subject itself: merged, erased), or which subject an identity belongs
/// to (an identity bound to a new subject or linked), named by its kind and the first 8 bytes of its
/// blind index — never the identity. `everything` stands for more changes than one transaction
/// lists (a bulk batch): every cached answer is dropped.
public enum AnswerChange: Sendable, Hashable {
    case subject(UUID)
    case identity(IdentityKind, tag: Int64)
    case everything

    /// The most changes one transaction lists in the feed; more are published as `everything`.
    public static let maxPerTransaction = 1_000

    /// The tag of a blind index: its first 8 bytes, big-endian.
    public static func tag(_ blindIndex: Data) -> Int64 {
        var value: UInt64 = 0
        for byte in blindIndex.prefix(8) { value = value << 8 | UInt64(byte) }
        return Int64(bitPattern: value)
    }

    /// A transaction's changes as published: deduplicated, or `everything` past the bound.
    public static func published(_ changes: Set<AnswerChange>) -> [AnswerChange] {
        changes.count > maxPerTransaction || changes.contains(.everything) ? [.everything] : Array(changes)
    }

    /// Several transactions' published changes, committed together (a group commit) and published
    /// at one position: their union, or `everything` when any of them was. The union is not cut to
    /// `everything` by its size: a group of many small writes must not drop every instance's cache.
    public static func merged(_ lists: [[AnswerChange]]) -> [AnswerChange] {
        var union: Set<AnswerChange> = []
        for list in lists {
            if list.contains(.everything) { return [.everything] }
            union.formUnion(list)
        }
        return Array(union)
    }
}

/// The resident answer set: a bounded, set-associative cache of what the consent check reads — which
/// subject an identity belongs to (or that none does), and every purpose's current state of a subject
/// — in two flat tables allocated once at the configured budget (ADR 0013).
///
/// - Identities (40 bytes a slot): kind, the 16-byte blind index, the subject or "none".
/// - Subjects (24 + 32 bytes per recordable purpose a slot): id, then per purpose the record id, the
///   decision time with the status in its top byte, and the expiry.
///
/// Sets of 8 slots; a full set evicts its least used slot (a use count up to 15, aged as the set
/// turns over), so subjects checked often stay and a scan of cold ones passes through.
/// Every set carries the generation of its last invalidation: a fill from a store read that began
/// before an invalidation of its set is dropped, so a read racing a change never caches the old answer.
/// Memory is guarded by 64 lock stripes per table.
public final class AnswerCache: @unchecked Sendable {
    public let purposes: [String]
    let purposeSlot: [String: Int]
    public let budgetBytes: Int

    static let ways = 8
    static let identitySlotSize = 40
    let subjectSlotSize: Int
    let identitySets: Int
    let subjectSets: Int
    let identityMemory: UnsafeMutableRawPointer
    let subjectMemory: UnsafeMutableRawPointer
    let identityStamps: UnsafeMutablePointer<UInt64>
    let subjectStamps: UnsafeMutablePointer<UInt64>
    let identityStripes: [Stripe]
    let subjectStripes: [Stripe]

    /// Incremented by every invalidation; a store read takes it as its ticket before it starts.
    let generation = Atomic<UInt64>(1)
    /// Until when (monotonic nanoseconds) the cache may answer: the start of the last poll of the
    /// change feed that succeeded, plus the staleness bound (`AnswerFeedFollower`). Past it nothing
    /// is answered from memory and nothing is filled, however long the poll in flight hangs.
    let servingUntil = Atomic<UInt64>(0)

    public struct Counters: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var invalidations = 0
        public var entries = 0

        public init(hits: Int = 0, misses: Int = 0, evictions: Int = 0, invalidations: Int = 0, entries: Int = 0) {
            self.hits = hits
            self.misses = misses
            self.evictions = evictions
            self.invalidations = invalidations
            self.entries = entries
        }
    }
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let evictions = Atomic<Int>(0)
    let invalidations = Atomic<Int>(0)
    /// Subjects held (a slot filled that was empty, less slots dropped), kept as they change so that
    /// a scrape of `/metrics` reads one number instead of every slot under every lock.
    let subjectEntries = Atomic<Int>(0)

    /// A cache of at most `budgetBytes` for the purposes a decision can be recorded for; nil when the
    /// budget is 0 (the check then always reads the store).
    public init?(budgetBytes: Int, purposes: [String]) {
        guard budgetBytes > 0 else { return nil }
        self.purposes = purposes
        self.purposeSlot = Dictionary(uniqueKeysWithValues: purposes.enumerated().map { ($1, $0) })
        self.budgetBytes = budgetBytes
        subjectSlotSize = 24 + 32 * purposes.count
        // Sized for about 1.25 identities per subject: each cached subject is reached through one.
        let perSubject = Double(subjectSlotSize) + 1.25 * Double(Self.identitySlotSize)
        let subjects = max(Double(Self.ways * 64), Double(budgetBytes) / perSubject)
        // Any number of sets (a hash is mapped onto them by a multiply, not a mask), so the tables
        // use the whole budget rather than the power of two below it.
        func sets(_ slots: Double) -> Int { max(64, Int(slots) / Self.ways) }
        subjectSets = sets(subjects)
        identitySets = sets(subjects * 1.25)
        let identityBytes = identitySets * Self.ways * Self.identitySlotSize
        let subjectBytes = subjectSets * Self.ways * subjectSlotSize
        // Zeroed by the kernel (calloc maps fresh pages for large sizes): memory becomes resident as
        // slots are first used, not all at start.
        guard let identities = calloc(identityBytes, 1), let subjects = calloc(subjectBytes, 1) else { return nil }
        identityMemory = identities
        subjectMemory = subjects
        identityStamps = .allocate(capacity: identitySets)
        identityStamps.initialize(repeating: 0, count: identitySets)
        subjectStamps = .allocate(capacity: subjectSets)
        subjectStamps.initialize(repeating: 0, count: subjectSets)
        identityStripes = (0..<64).map { _ in Stripe() }
        subjectStripes = (0..<64).map { _ in Stripe() }
    }

    deinit {
        free(identityMemory)
        free(subjectMemory)
        identityStamps.deallocate()
        subjectStamps.deallocate()
    }

    /// The bytes both tables take (their slots; a little under the budget).
    public var allocatedBytes: Int {
        identitySets * Self.ways * Self.identitySlotSize + subjectSets * Self.ways * subjectSlotSize
    }

    public var subjectCapacity: Int { subjectSets * Self.ways }

    public var isServing: Bool { Self.monotonicNanoseconds() < servingUntil.load(ordering: .acquiring) }

    /// Answers from memory until `deadline` (monotonic nanoseconds), or stops at once (0).
    public func serve(until deadline: UInt64) { servingUntil.store(deadline, ordering: .releasing) }

    /// Turns answering from memory on with no deadline, or off (tests; a store with no feed).
    public func setServing(_ value: Bool) { serve(until: value ? .max : 0) }

    /// The clock the serving deadline is read on.
    public static func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// What the cache knows of an identity: its subject's states, that no subject holds it, or nothing.
    public enum Answer: Sendable, Equatable {
        case states(SubjectStates)
        case noSubject
        case miss

        /// What is known: the states, `.some(nil)` when no subject holds the identity, nil on a miss.
        public var known: SubjectStates?? {
            switch self {
            case .states(let found): found
            case .noSubject: .some(nil)
            case .miss: nil
            }
        }
    }

    /// Taken before a store read whose result may be filled in.
    public func ticket() -> UInt64 { generation.load(ordering: .acquiring) }

    // MARK: Look-ups

    /// `countingMisses: false` is for a look-up whose miss is looked up again (the HTTP edge's
    /// in-memory answer, which hands a miss on to the route that reads the store).
    public func lookup(kind: IdentityKind, blindIndex: Data, countingMisses: Bool = true) -> Answer {
        guard isServing, let key = IdentityKey(kind: kind, blindIndex: blindIndex) else { return .miss }
        let set = identitySet(key)
        let found: (absent: Bool, subject: UUID)? = identityStripes[set & 63].withLock {
            guard let slot = findIdentity(key, in: set) else { return nil }
            let base = identitySlot(set, slot)
            bumpUse(base + 34)
            if base.load(fromByteOffset: 32, as: UInt8.self) & 2 != 0 { return (true, Self.nobody) }
            return (false, Self.loadUUID(base + 16))
        }
        guard let found else {
            if countingMisses { misses.add(1, ordering: .relaxed) }
            return .miss
        }
        if found.absent {
            hits.add(1, ordering: .relaxed)
            return .noSubject
        }
        guard let states = lookup(subject: found.subject, countingMisses: countingMisses) else { return .miss }
        return .states(states)
    }

    /// A subject's states by its id (a check by subject id), nil on a miss.
    public func lookup(subject id: UUID, countingMisses: Bool = true) -> SubjectStates? {
        guard isServing else { return nil }
        let set = subjectSet(id)
        let states: SubjectStates? = subjectStripes[set & 63].withLock {
            guard let slot = findSubject(id, in: set) else { return nil }
            let base = subjectSlot(set, slot)
            bumpUse(base + 17)
            return readStates(id, base)
        }
        if states != nil {
            hits.add(1, ordering: .relaxed)
        } else if countingMisses {
            misses.add(1, ordering: .relaxed)
        }
        return states
    }

    // MARK: Fills

    /// Keeps what a store read found for an identity (nil: no subject holds it), unless an
    /// invalidation of its sets came after `ticket`.
    public func fill(kind: IdentityKind, blindIndex: Data, found: SubjectStates?, ticket: UInt64) {
        guard isServing, let key = IdentityKey(kind: kind, blindIndex: blindIndex) else { return }
        if let found, !fill(subject: found, ticket: ticket) { return }
        let set = identitySet(key)
        identityStripes[set & 63].withLock {
            guard identityStamps[set] <= ticket else { return }
            let slot =
                findIdentity(key, in: set)
                ?? victim(in: identitySlot(set, 0), size: Self.identitySlotSize, flag: 32, use: 34).slot
            let base = identitySlot(set, slot)
            base.storeBytes(of: key.high, toByteOffset: 0, as: UInt64.self)
            base.storeBytes(of: key.low, toByteOffset: 8, as: UInt64.self)
            Self.storeUUID(found?.subjectID ?? Self.nobody, base + 16)
            base.storeBytes(of: 1 | (found == nil ? 2 : 0), toByteOffset: 32, as: UInt8.self)
            base.storeBytes(of: key.kind, toByteOffset: 33, as: UInt8.self)
        }
    }

    /// Keeps a subject's states; false when an invalidation since `ticket` forbids it, or a state's
    /// purpose is not one the cache has a place for (then the subject is always read from the store).
    @discardableResult
    public func fill(subject found: SubjectStates, ticket: UInt64) -> Bool {
        guard isServing else { return false }
        var packed: [(purpose: Int, status: UInt8, state: ConsentState)] = []
        for state in found.states {
            guard let purpose = purposeSlot[state.purpose], let status = Self.statusCode(state.status) else {
                return false
            }
            packed.append((purpose, status, state))
        }
        let set = subjectSet(found.subjectID)
        return subjectStripes[set & 63].withLock {
            guard subjectStamps[set] <= ticket else { return false }
            let slot: Int
            if let held = findSubject(found.subjectID, in: set) {
                slot = held
            } else {
                let (chosen, wasEmpty) = victim(in: subjectSlot(set, 0), size: subjectSlotSize, flag: 16, use: 17)
                if wasEmpty { subjectEntries.add(1, ordering: .relaxed) }
                slot = chosen
            }
            let base = subjectSlot(set, slot)
            (base + 24).initializeMemory(as: UInt8.self, repeating: 0, count: 32 * purposes.count)
            Self.storeUUID(found.subjectID, base)
            base.storeBytes(of: 1, toByteOffset: 16, as: UInt8.self)
            for (purpose, status, state) in packed {
                let at = base + 24 + 32 * purpose
                Self.storeUUID(state.eventID, at)
                let decided = UInt64(bitPattern: Timestamp.micros(state.decidedAt)) & 0x00FF_FFFF_FFFF_FFFF
                at.storeBytes(of: decided | UInt64(status) << 56, toByteOffset: 16, as: UInt64.self)
                at.storeBytes(
                    of: state.expiresAt.map { Timestamp.micros($0) } ?? Int64.min, toByteOffset: 24, as: Int64.self)
            }
            return true
        }
    }

    // MARK: Invalidation

    /// Drops what the changes make stale, and stamps their sets so that reads in flight do not put
    /// it back.
    public func invalidate(_ changes: some Sequence<AnswerChange>) {
        for change in changes {
            invalidations.add(1, ordering: .relaxed)
            switch change {
            case .everything:
                invalidateAll()
            case .subject(let id):
                let set = subjectSet(id)
                subjectStripes[set & 63].withLock {
                    subjectStamps[set] = generation.add(1, ordering: .acquiringAndReleasing).newValue
                    if let slot = findSubject(id, in: set) {
                        subjectSlot(set, slot).storeBytes(of: 0, toByteOffset: 16, as: UInt8.self)
                        subjectEntries.subtract(1, ordering: .relaxed)
                    }
                }
            case .identity(let kind, let tag):
                let high = UInt64(bitPattern: tag)
                let kindCode = kind.cacheCode
                let set = identitySet(high: high, kind: kindCode)
                identityStripes[set & 63].withLock {
                    identityStamps[set] = generation.add(1, ordering: .acquiringAndReleasing).newValue
                    for slot in 0..<Self.ways {
                        let base = identitySlot(set, slot)
                        if base.load(fromByteOffset: 32, as: UInt8.self) & 1 != 0,
                            base.load(fromByteOffset: 33, as: UInt8.self) == kindCode,
                            base.load(fromByteOffset: 0, as: UInt64.self) == high
                        {
                            base.storeBytes(of: 0, toByteOffset: 32, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    /// Drops every answer (the feed was out of reach, or a change too large to list), stamping every
    /// set so that no read in flight puts an answer back. A slot's flag is written only when it is
    /// set: reading a page never used maps the kernel's zero page, so a start (whose first poll drops
    /// everything) leaves the tables' untouched pages out of the resident set.
    public func invalidateAll() {
        let stamp = generation.add(1, ordering: .acquiringAndReleasing).newValue
        for stripe in 0..<64 {
            identityStripes[stripe].withLock {
                for set in stride(from: stripe, to: identitySets, by: 64) {
                    identityStamps[set] = stamp
                    for slot in 0..<Self.ways {
                        let base = identitySlot(set, slot)
                        if base.load(fromByteOffset: 32, as: UInt8.self) != 0 {
                            base.storeBytes(of: 0, toByteOffset: 32, as: UInt8.self)
                        }
                    }
                }
            }
            subjectStripes[stripe].withLock {
                var dropped = 0
                for set in stride(from: stripe, to: subjectSets, by: 64) {
                    subjectStamps[set] = stamp
                    for slot in 0..<Self.ways {
                        let base = subjectSlot(set, slot)
                        if base.load(fromByteOffset: 16, as: UInt8.self) != 0 {
                            base.storeBytes(of: 0, toByteOffset: 16, as: UInt8.self)
                            dropped += 1
                        }
                    }
                }
                subjectEntries.subtract(dropped, ordering: .relaxed)
            }
        }
    }

    public var counters: Counters {
        Counters(
            hits: hits.load(ordering: .relaxed), misses: misses.load(ordering: .relaxed),
            evictions: evictions.load(ordering: .relaxed), invalidations: invalidations.load(ordering: .relaxed),
            entries: subjectEntries.load(ordering: .relaxed))
    }

    // MARK: Layout

    struct IdentityKey {
        var high: UInt64
        var low: UInt64
        var kind: UInt8

        init?(kind: IdentityKind, blindIndex: Data) {
            guard blindIndex.count == 16 else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (offset, byte) in blindIndex.enumerated() {
                if offset < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self.high = high
            self.low = low
            self.kind = kind.cacheCode
        }
    }

    func identitySet(_ key: IdentityKey) -> Int { identitySet(high: key.high, kind: key.kind) }

    func identitySet(high: UInt64, kind: UInt8) -> Int {
        Self.set(of: high ^ UInt64(kind) &* 0x9E37_79B9_7F4A_7C15, among: identitySets)
    }

    func subjectSet(_ id: UUID) -> Int {
        // The last 8 bytes of a UUIDv7 are random; mixed so that any id spreads.
        let (high, low) = Self.words(id)
        return Self.set(of: (low ^ high) &* 0x9E37_79B9_7F4A_7C15, among: subjectSets)
    }

    /// A mixed 64-bit hash mapped onto `count` sets: the high word of hash × count (uniform for a
    /// uniform hash, and with no division).
    static func set(of hash: UInt64, among count: Int) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(count)).high)
    }

    func identitySlot(_ set: Int, _ slot: Int) -> UnsafeMutableRawPointer {
        identityMemory + (set * Self.ways + slot) * Self.identitySlotSize
    }

    func subjectSlot(_ set: Int, _ slot: Int) -> UnsafeMutableRawPointer {
        subjectMemory + (set * Self.ways + slot) * subjectSlotSize
    }

    func findIdentity(_ key: IdentityKey, in set: Int) -> Int? {
        for slot in 0..<Self.ways {
            let base = identitySlot(set, slot)
            if base.load(fromByteOffset: 32, as: UInt8.self) & 1 != 0,
                base.load(fromByteOffset: 0, as: UInt64.self) == key.high,
                base.load(fromByteOffset: 8, as: UInt64.self) == key.low,
                base.load(fromByteOffset: 33, as: UInt8.self) == key.kind
            {
                return slot
            }
        }
        return nil
    }

    func findSubject(_ id: UUID, in set: Int) -> Int? {
        let (high, low) = Self.words(id)
        for slot in 0..<Self.ways {
            let base = subjectSlot(set, slot)
            if base.load(fromByteOffset: 16, as: UInt8.self) != 0,
                base.load(fromByteOffset: 0, as: UInt64.self) == high,
                base.load(fromByteOffset: 8, as: UInt64.self) == low
            {
                return slot
            }
        }
        return nil
    }

    /// The slot a new entry takes: an empty one, else the least used, after every count in the set
    /// is lowered by the least one (so counts age only as the set turns over). A new entry starts at
    /// 0: until it is checked again it is the first to go, and a scan of cold subjects evicts only
    /// its own kind.
    func victim(in first: UnsafeMutableRawPointer, size: Int, flag: Int, use: Int) -> (slot: Int, wasEmpty: Bool) {
        var chosen = 0
        var least = UInt8.max
        for slot in 0..<Self.ways {
            let base = first + slot * size
            if base.load(fromByteOffset: flag, as: UInt8.self) & 1 == 0 {
                base.storeBytes(of: 0, toByteOffset: use, as: UInt8.self)
                return (slot, true)
            }
            let count = base.load(fromByteOffset: use, as: UInt8.self)
            if count < least {
                least = count
                chosen = slot
            }
        }
        if least > 0 {
            for slot in 0..<Self.ways {
                let base = first + slot * size
                base.storeBytes(
                    of: base.load(fromByteOffset: use, as: UInt8.self) - least, toByteOffset: use, as: UInt8.self)
            }
        }
        evictions.add(1, ordering: .relaxed)
        return (chosen, false)
    }

    /// One more use, up to 15: a subject once hot, then cold, falls back within a few turns of its set.
    func bumpUse(_ at: UnsafeMutableRawPointer) {
        let count = at.load(as: UInt8.self)
        if count < 15 { at.storeBytes(of: count + 1, as: UInt8.self) }
    }

    func readStates(_ id: UUID, _ base: UnsafeMutableRawPointer) -> SubjectStates {
        var states: [ConsentState] = []
        for (slot, purpose) in purposes.enumerated() {
            let at = base + 24 + 32 * slot
            let word = at.load(fromByteOffset: 16, as: UInt64.self)
            guard let status = Self.status(UInt8(word >> 56)) else { continue }
            let expires = at.load(fromByteOffset: 24, as: Int64.self)
            states.append(
                ConsentState(
                    subjectID: id, purpose: purpose, status: status, eventID: Self.loadUUID(at),
                    decidedAt: Timestamp.date(micros: Int64(bitPattern: word & 0x00FF_FFFF_FFFF_FFFF)),
                    expiresAt: expires == Int64.min ? nil : Timestamp.date(micros: expires)))
        }
        return SubjectStates(subjectID: id, states: states)
    }

    static func statusCode(_ status: ConsentStatus) -> UInt8? {
        switch status {
        case .pending: 1
        case .granted: 2
        case .denied: 3
        case .withdrawn: 4
        case .none, .expired: nil  // never stored
        }
    }

    static func status(_ code: UInt8) -> ConsentStatus? {
        switch code {
        case 1: .pending
        case 2: .granted
        case 3: .denied
        case 4: .withdrawn
        default: nil
        }
    }

    static func words(_ id: UUID) -> (UInt64, UInt64) {
        withUnsafeBytes(of: id.uuid) {
            ($0.load(fromByteOffset: 0, as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self))
        }
    }

    static func storeUUID(_ id: UUID, _ at: UnsafeMutableRawPointer) {
        withUnsafeBytes(of: id.uuid) { at.copyMemory(from: $0.baseAddress!, byteCount: 16) }
    }

    static let nobody = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    static func loadUUID(_ at: UnsafeMutableRawPointer) -> UUID {
        var value = nobody.uuid
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(start: at, count: 16)) }
        return UUID(uuid: value)
    }
}

/// One lock of a table's 64.
final class Stripe: Sendable {
    let mutex = Mutex(())

    func withLock<T>(_ body: () -> T) -> T {
        mutex.withLock { _ in body() }
    }
}

extension IdentityKind {
    /// A small code for the cache's slots (0 marks nothing: codes start at 1).
    var cacheCode: UInt8 {
        switch self {
        case .email: 1
        case .phone: 2
        case .externalId: 3
        case .deviceId: 4
        }
    }
}

/// A read of the change feed.
public struct AnswerFeedPage: Sendable, Equatable {
    public var changes: [AnswerChange]
    /// The position the read reached (the last row's, or the one asked from when there was none).
    public var position: Int64
    public var complete: Bool

    public init(changes: [AnswerChange], position: Int64, complete: Bool) {
        self.changes = changes
        self.position = position
        self.complete = complete
    }

    /// Rows of (position, subject, identity kind, identity tag) as read, in position order.
    public static func reading(
        _ rows: [(position: Int64, subject: UUID?, kind: String?, tag: Int64?)], after: Int64, limit: Int
    ) throws -> AnswerFeedPage {
        var changes: [AnswerChange] = []
        for row in rows {
            if let subject = row.subject {
                changes.append(.subject(subject))
            } else if let kindText = row.kind, let tag = row.tag {
                guard let kind = IdentityKind(rawValue: kindText) else {
                    throw StoreError.integrity("answer_changes.identity_kind")
                }
                changes.append(.identity(kind, tag: tag))
            } else {
                changes.append(.everything)
            }
        }
        return AnswerFeedPage(changes: changes, position: rows.last?.position ?? after, complete: rows.count < limit)
    }
}

/// The answer changes of one write transaction, noted by the store's session as it writes and
/// published with it (the feed) and, after its commit, to this instance's cache.
public final class AnswerChangeLog: @unchecked Sendable {
    private var changes: Set<AnswerChange> = []

    public init() {}

    public func note(_ change: AnswerChange) {
        guard !changes.contains(.everything) else { return }
        changes.insert(change)
        if changes.count > AnswerChange.maxPerTransaction { changes = [.everything] }
    }

    public func noteIdentity(kind: IdentityKind, blindIndex: Data) {
        note(.identity(kind, tag: AnswerChange.tag(blindIndex)))
    }

    public var isEmpty: Bool { changes.isEmpty }

    /// What the transaction publishes: its changes, or `everything` past the bound.
    public var published: [AnswerChange] { AnswerChange.published(changes) }
}
