public import Foundation
public import StewardCore

/// A double opt-in token as stored (hash only).
public struct ConfirmationRecord: Sendable, Hashable {
    public var eventID: UUID
    public var subjectID: UUID
    public var purpose: String
    public var expiresAt: Date
    public var usedAt: Date?

    public init(eventID: UUID, subjectID: UUID, purpose: String, expiresAt: Date, usedAt: Date?) {
        self.eventID = eventID
        self.subjectID = subjectID
        self.purpose = purpose
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}

/// Reads of the consent ledger: current states and the append-only history.
public protocol ConsentLedgerReading: Sendable {
    func consentState(subjectID: UUID, purpose: String) async throws -> ConsentState?
    func consentStates(subjectID: UUID) async throws -> [ConsentState]
    /// Every current state of many subjects, or nil where the store answers single reads as cheaply
    /// (the default). A bulk batch reads its existing subjects' states up front with it.
    func consentStates(subjectIDs: [UUID]) async throws -> [ConsentState]?
    /// The subjects that hold these identities of one kind, each with every current state: blind
    /// index → subject. Identities no subject holds are absent. The batch check reads with it.
    func subjectStates(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: SubjectStates]
    /// Events with ordinal greater than `afterOrdinal`, oldest first.
    func consentHistory(subjectID: UUID, afterOrdinal: Int64, limit: Int) async throws -> [ConsentEvent]
    /// Subject ids (ascending, after `after`) whose current state allows `purpose` at `now`:
    /// for opt-in, an unexpired grant; otherwise, anything but a denial or withdrawal (no decision included).
    func audience(
        purpose: String, mechanism: ConsentMechanism, now: Date, after: UUID?, limit: Int
    ) async throws -> [UUID]
}

extension ConsentLedgerReading {
    public func consentStates(subjectIDs: [UUID]) async throws -> [ConsentState]? { nil }
}

/// Writes of the consent ledger: events, states, per-subject ordinals and double opt-in tokens.
public protocol ConsentLedgerWriting: ConsentLedgerReading {
    /// Takes the next history ordinal of a subject, locking the subject row until commit.
    func nextOrdinal(subjectID: UUID) async throws -> Int64
    /// Moves every event of `source` to `target`, shifting ordinals by `offset`; returns how many moved.
    func moveConsentEvents(from source: UUID, to target: UUID, ordinalOffset: Int64) async throws -> Int
    /// Sets the ordinal counter of a subject.
    func setOrdinal(subjectID: UUID, to value: Int64) async throws
    /// Locks the rows of many subjects in id order and returns their ordinal counters, or nil where
    /// the store runs one writer at a time anyway (the default). A bulk batch takes its subjects' locks
    /// up front, so two batches touching the same people in different orders cannot deadlock.
    func lockSubjects(_ ids: [UUID]) async throws -> [UUID: Int64]?
    func insertConsentEvent(_ event: ConsentEvent) async throws
    func upsertConsentState(_ state: ConsentState) async throws
    func deleteConsentStates(subjectID: UUID) async throws
    func insertConfirmation(tokenHash: Data, _ record: ConfirmationRecord) async throws
    func confirmation(tokenHash: Data) async throws -> ConfirmationRecord?
    func markConfirmationUsed(tokenHash: Data, at: Date) async throws
}

extension ConsentLedgerWriting {
    public func lockSubjects(_ ids: [UUID]) async throws -> [UUID: Int64]? { nil }
}
