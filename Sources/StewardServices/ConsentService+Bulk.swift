public import Foundation
public import StewardCore

/// Bulk recording: prepared off the writer, applied in atomic batches, split line by line when the
/// database refuses a batch whole.
extension ConsentService {
    /// One line of a bulk import: either a command or the reason it was rejected.
    public enum BulkItem: Sendable {
        case command(line: Int, RecordCommand)
        case rejected(line: Int, StewardError)

        public var line: Int {
            switch self {
            case .command(let line, _), .rejected(let line, _): line
            }
        }
    }

    public struct BulkRejection: Sendable, Equatable {
        public var line: Int
        public var error: StewardError
    }

    /// A double opt-in grant a bulk recorded as pending, with the token to mail for it.
    public struct BulkPending: Sendable, Equatable {
        public var line: Int
        public var subjectID: UUID
        public var purpose: String
        public var token: String
        public var expiresAt: Date
    }

    public struct BulkOutcome: Sendable, Equatable {
        public var accepted: Int
        public var rejected: [BulkRejection]
        /// Batches the database refused as a whole and that were applied again line by line.
        public var batchesSplit: Int = 0
        /// Accepted lines left pending a double opt-in confirmation (only when tokens were asked for).
        public var pending: [BulkPending] = []
    }

    /// Applies many decisions in atomic batches. Invalid items are reported with their line and never
    /// abort the rest. A batch the database refuses as a whole (a constraint or trigger tripped by one
    /// line) is applied again line by line, each in its own transaction, so only the offending lines
    /// are rejected (`store.rejected`); when the database itself is down, the call fails instead.
    ///
    /// With a `checkpoint`, each batch's transaction also records the line it reached (an import's
    /// job cursor, fenced by its lease: `ConsentImports`), so an import that dies can resume after the
    /// last committed line instead of recording its lines twice.
    ///
    /// A grant for a double opt-in purpose without `confirmedAt` would be left pending: it is rejected
    /// (`consent.confirmation_required`) unless `issueConfirmationTokens` is set, in which case it is
    /// recorded pending and its token returned in `BulkOutcome.pending`, so no pending record is left
    /// that nobody can confirm.
    public func recordBulk(
        _ items: [BulkItem], batchSize: Int = 1_000, checkpoint: ImportCursor? = nil,
        issueConfirmationTokens: Bool = false, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> BulkOutcome {
        try await recordPrepared(
            prepareBulk(items, issueConfirmationTokens: issueConfirmationTokens), batchSize: batchSize,
            checkpoint: checkpoint, progress: progress)
    }

    /// Where an import's batches record their progress: the lines it accepted and rejected before
    /// this bulk (earlier bulks of this run, and the runs before a resume), and how a position is
    /// written in a batch's transaction — so each batch commits with the import's running totals.
    public struct ImportCursor: Sendable {
        public var accepted: Int
        public var rejected: Int
        let write: @Sendable (any StoreTransaction, ImportPosition) async throws -> Void

        public init(
            accepted: Int = 0, rejected: Int = 0,
            write: @escaping @Sendable (any StoreTransaction, ImportPosition) async throws -> Void
        ) {
            self.accepted = accepted
            self.rejected = rejected
            self.write = write
        }

        func position(line: Int) -> ImportPosition {
            ImportPosition(line: line, accepted: accepted, rejected: rejected)
        }
    }

    /// Every line up to `line` is recorded or was rejected: `accepted` and `rejected` of them.
    public struct ImportPosition: Codable, Sendable, Hashable {
        public var line: Int
        public var accepted: Int
        public var rejected: Int
        public init(line: Int, accepted: Int, rejected: Int) {
            self.line = line
            self.accepted = accepted
            self.rejected = rejected
        }
    }

    /// A bulk with its CPU-only work done and no store touched: lines validated, identities
    /// blind-indexed, and each identity's first line given the ids and sealed value of the subject it
    /// would create. An importer prepares the next bulk while the store writes this one, so parsing,
    /// HMAC and AES-GCM run on another core than the writer.
    public struct PreparedBulk: Sendable {
        var valid: [ValidItem]
        var rejected: [BulkRejection]
    }

    /// What `prepareBulk` worked out for one line's identity.
    struct PreparedIdentity: Sendable {
        var blindIndex: Data
        /// On the identity's first line: the subject it creates if the store does not know it yet. Its
        /// sealed value is bound to these ids, so they are used together or not at all.
        var newSubject: (subjectID: UUID, identityID: UUID, ciphertext: Data)?
    }

    public func prepareBulk(_ items: [BulkItem], issueConfirmationTokens: Bool = false) -> PreparedBulk {
        var rejected: [BulkRejection] = []
        var valid: [ValidItem] = []
        valid.reserveCapacity(items.count)
        var seen = Set<BatchCache.IdentityKey>()
        for item in items {
            switch item {
            case .rejected(let line, let error):
                rejected.append(.init(line: line, error: error))
            case .command(let line, let command):
                let purpose: Purpose
                do {
                    purpose = try validate(command)
                } catch {
                    rejected.append(.init(line: line, error: error))
                    continue
                }
                if !issueConfirmationTokens, purpose.doubleOptIn, command.decision == .granted,
                    command.confirmedAt == nil
                {
                    rejected.append(
                        .init(
                            line: line,
                            error: StewardError(
                                .consentConfirmationRequired,
                                "a grant for a double opt-in purpose needs confirmedAt (when the person confirmed); "
                                    + "or import with --tokens FILE to record it pending and mail each token",
                                field: "confirmedAt")))
                    continue
                }
                var prepared: PreparedIdentity?
                if case .identity(let identity) = command.subject {
                    let index = crypto.indexer.index(identity)
                    prepared = PreparedIdentity(blindIndex: index)
                    if seen.insert(BatchCache.IdentityKey(kind: identity.kind, blindIndex: index)).inserted {
                        let subjectID = runtime.newID()
                        let identityID = runtime.newID()
                        // A seal that fails here is retried (and reported) by the write itself.
                        if let sealed = try? vault.seal(identity, identityID: identityID, subjectID: subjectID) {
                            prepared?.newSubject = (subjectID, identityID, sealed)
                        }
                    }
                }
                valid.append((line, command, purpose, prepared))
            }
        }
        return PreparedBulk(valid: valid, rejected: rejected)
    }

    /// Writes a prepared bulk in atomic batches: see `recordBulk`.
    public func recordPrepared(
        _ bulk: PreparedBulk, batchSize: Int = 1_000, checkpoint: ImportCursor? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> BulkOutcome {
        var rejected = bulk.rejected
        var pending: [BulkPending] = []
        let valid = bulk.valid
        var accepted = 0
        var split = 0
        var start = 0
        var cursor = checkpoint
        var refusedBefore = 0  // lines refused by `prepareBulk` already counted into `cursor`
        while start < valid.count {
            let batch = Array(valid[start..<min(start + batchSize, valid.count)])
            // Lines `prepareBulk` refused up to this batch's last line are behind its checkpoint too.
            if let last = batch.last?.line {
                while refusedBefore < bulk.rejected.count && bulk.rejected[refusedBefore].line <= last {
                    cursor?.rejected += 1
                    refusedBefore += 1
                }
            }
            let batchRejected: [BulkRejection]
            let batchPending: [BulkPending]
            do {
                (batchRejected, batchPending) = try await recordBatch(batch, checkpoint: cursor)
            } catch is CancellationError {
                throw CancellationError()
            } catch let lost as JobLeaseLost {
                // The import's lease went to another run: nothing of this batch committed; stop.
                throw lost
            } catch {
                split += 1
                (batchRejected, batchPending) = try await recordOneByOne(batch, checkpoint: cursor)
            }
            cursor?.accepted += batch.count - batchRejected.count
            cursor?.rejected += batchRejected.count
            rejected += batchRejected
            pending += batchPending
            accepted += batch.count - batchRejected.count
            start += batch.count
            progress?(start)
        }
        rejected.sort { $0.line < $1.line }
        return BulkOutcome(accepted: accepted, rejected: rejected, batchesSplit: split, pending: pending)
    }

    typealias ValidItem = (line: Int, command: RecordCommand, purpose: Purpose, identity: PreparedIdentity?)

    /// One batch, one transaction.
    func recordBatch(_ batch: [ValidItem], checkpoint: ImportCursor?) async throws -> ([BulkRejection], [BulkPending]) {
        let (failed, pending, tally) = try await store.writeRetrying { transaction in
            var drafts: [AuditDraft] = []
            var failed: [BulkRejection] = []
            var pending: [BulkPending] = []
            var tally: [EventKind: Int] = [:]
            var cache: BatchCache? = BatchCache()  // per attempt: a retried batch starts afresh
            try await Self.lookUpIdentities(of: batch, in: transaction, into: &cache)
            let lockedAt = cache?.locked ?? [:]
            for item in batch {
                let draftsBefore = drafts.count
                do {
                    let outcome = try await self.apply(
                        item.command, purpose: item.purpose, prepared: item.identity, in: transaction,
                        audit: &drafts, cache: &cache)
                    Self.tally(outcome.allEvents, into: &tally)
                    if let token = Self.pending(outcome, line: item.line) { pending.append(token) }
                } catch let error as StewardError {
                    // A refused line is skipped and the batch goes on only if it wrote nothing. Each
                    // write of `apply` is followed by its audit draft before anything that can raise a
                    // StewardError, so no new draft means no write. Otherwise the batch fails whole and
                    // is applied again one line per transaction, where a refusal undoes its line only.
                    guard drafts.count == draftsBefore else { throw LineWrittenInPart() }
                    failed.append(.init(line: item.line, error: error))
                }
            }
            try await Self.writeOrdinals(of: cache, lockedAt: lockedAt, in: transaction)
            if var checkpoint, let last = batch.last {
                checkpoint.accepted += batch.count - failed.count
                checkpoint.rejected += failed.count
                try await checkpoint.write(transaction, checkpoint.position(line: last.line))
            }
            try await self.audit.append(drafts, in: transaction)
            return (failed, pending, tally)
        }
        countCommitted(tally)
        return (failed, pending)
    }

    static func pending(_ outcome: RecordOutcome, line: Int) -> BulkPending? {
        guard let token = outcome.confirmationToken, let expiresAt = outcome.confirmationExpiresAt else { return nil }
        return BulkPending(
            line: line, subjectID: outcome.subjectID, purpose: outcome.event.purpose, token: token,
            expiresAt: expiresAt)
    }

    /// Writes the ordinal counters a batch kept in its cache: of the subjects it created, and of the
    /// locked ones it advanced past their counter at the batch start (`lockedAt`).
    static func writeOrdinals(
        of cache: BatchCache?, lockedAt: [UUID: Int64], in transaction: any ConsentLedgerWriting
    ) async throws {
        for (subject, last) in cache?.created ?? [:] where last > 0 {
            try await transaction.setOrdinal(subjectID: subject, to: last)
        }
        for (subject, last) in cache?.locked ?? [:] where last != lockedAt[subject] {
            try await transaction.setOrdinal(subjectID: subject, to: last)
        }
    }

    /// Asks the store about every identity of the batch at once where that saves round trips (one
    /// query per kind on PostgreSQL instead of one per line), so lines of new subjects read nothing
    /// during the batch, and locks the rows of the subjects that exist, in one order, and reads their
    /// states, so their lines take ordinals and earlier states without a round trip each and
    /// concurrent batches cannot deadlock on them.
    static func lookUpIdentities(
        of batch: [ValidItem], in transaction: any SubjectReading & ConsentLedgerWriting, into cache: inout BatchCache?
    ) async throws {
        var byKind: [IdentityKind: Set<Data>] = [:]
        for item in batch {
            guard let index = item.identity?.blindIndex, case .identity(let identity) = item.command.subject else {
                continue
            }
            byKind[identity.kind, default: []].insert(index)
        }
        for (kind, indexes) in byKind {
            guard let found = try await transaction.subjectIDs(kind: kind, blindIndexes: Array(indexes)) else {
                return  // the store looks up one by one as cheaply: resolveOrCreate asks as it goes
            }
            for index in indexes {
                let key = BatchCache.IdentityKey(kind: kind, blindIndex: index)
                if let subject = found[index] { cache?.subjects[key] = subject } else { cache?.absent.insert(key) }
            }
            let missing = indexes.filter { found[$0] == nil }
            if !missing.isEmpty {
                for index in try await transaction.suppressedIndexes(kind: kind, blindIndexes: Array(missing)) {
                    cache?.suppressed.insert(BatchCache.IdentityKey(kind: kind, blindIndex: index))
                }
            }
        }
        // The existing subjects' rows, locked now and in one order (see `lockSubjects`), and their states.
        guard let subjects = cache?.subjects.values else { return }
        let existing = Array(Set(subjects))
        if let counters = try await transaction.lockSubjects(existing) { cache?.locked = counters }
        if let states = try await transaction.consentStates(subjectIDs: existing) {
            for state in states {
                cache?.states[BatchCache.StateKey(subject: state.subjectID, purpose: state.purpose)] = state
            }
            cache?.statesLoaded.formUnion(existing)
        }
    }

    /// A refused batch, again, one transaction per line. A line the database refuses is reported
    /// without the database's message (it may quote values); if the database does not answer a
    /// ping after such a refusal, it is down rather than refusing a line, and the error propagates.
    func recordOneByOne(_ batch: [ValidItem], checkpoint: ImportCursor?) async throws -> (
        [BulkRejection], [BulkPending]
    ) {
        var failed: [BulkRejection] = []
        var pending: [BulkPending] = []
        // The import's totals as of the last line handled; a line's checkpoint carries them with it.
        var cursor = checkpoint
        var checkedStore = false
        for item in batch {
            do {
                let next = cursor.map { cursor -> ImportCursor in
                    var next = cursor
                    next.accepted += 1
                    return next
                }
                let outcome = try await store.writeRetrying { transaction in
                    var drafts: [AuditDraft] = []
                    var noCache: BatchCache? = nil
                    let outcome = try await self.apply(
                        item.command, purpose: item.purpose, in: transaction, audit: &drafts, cache: &noCache)
                    try await self.audit.append(drafts, in: transaction)
                    if let next { try await next.write(transaction, next.position(line: item.line)) }
                    return outcome
                }
                cursor = next
                countCommitted(events: outcome.allEvents)
                if let token = Self.pending(outcome, line: item.line) { pending.append(token) }
            } catch let error as StewardError {
                failed.append(.init(line: item.line, error: error))
                cursor?.rejected += 1
            } catch is CancellationError {
                throw CancellationError()
            } catch let lost as JobLeaseLost {
                // The import's lease went to another run: nothing of this batch committed; stop.
                throw lost
            } catch {
                if !checkedStore {
                    try await store.ping()
                    checkedStore = true
                }
                failed.append(
                    .init(
                        line: item.line,
                        error: StewardError(.storeRejected, "the database refused this line; it was not recorded")))
                cursor?.rejected += 1
            }
        }
        return (failed, pending)
    }
}

/// A bulk line raised a refusal after some of its writes: its batch must not commit.
struct LineWrittenInPart: Error {}

/// What one bulk batch has already learned or written, so its later lines need not ask the database
/// again: subjects by identity, subjects created in the batch (no earlier state; their event ordinals
/// are counted here and written once when the batch ends) and the states the batch wrote. Lives for
/// one transaction attempt. Import of three purposes per new subject: two of its three subject
/// lookups, all three state reads and two of three ordinal updates are saved.
struct BatchCache {
    struct IdentityKey: Hashable {
        var kind: IdentityKind
        var blindIndex: Data
    }

    struct StateKey: Hashable {
        var subject: UUID
        var purpose: String
    }

    var subjects: [IdentityKey: UUID] = [:]
    /// Identities the store was asked about at the start of the batch and does not know.
    var absent: Set<IdentityKey> = []
    /// Of those, the ones on the suppression list (erased on request); asked with `absent`.
    var suppressed: Set<IdentityKey> = []
    /// Subjects created in this batch, with the last ordinal given to their events.
    var created: [UUID: Int64] = [:]
    /// Existing subjects whose rows the batch locked at its start (`lockSubjects`), with their ordinal
    /// counters as the batch advances them.
    var locked: [UUID: Int64] = [:]
    var states: [StateKey: ConsentState] = [:]
    /// Existing subjects whose every state was read at the batch start (`consentStates(subjectIDs:)`).
    var statesLoaded: Set<UUID> = []
}
