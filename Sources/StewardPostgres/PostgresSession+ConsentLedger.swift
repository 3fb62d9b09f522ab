import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// The consent ledger: states, events, ordinals, double opt-in tokens, on PostgresSession.
extension PostgresSession {
    static func state(_ row: PostgresRow) throws -> ConsentState {
        let (subject, purpose, status, event, decided, expires) = try row.decode(
            (UUID, String, String, UUID, Int64, Int64?).self)
        return ConsentState(
            subjectID: subject, purpose: purpose,
            status: try StoreError.stored(ConsentStatus.self, status, column: "consent status"), eventID: event,
            decidedAt: Timestamp.date(micros: decided), expiresAt: expires.map(Timestamp.date(micros:)))
    }

    /// An identity's subject and each of its states (none: one row with NULL state columns), the
    /// kind as $1; the caller appends ` = $2` or ` IN (…)` for the blind index.
    static let subjectStatesQuery = """
        SELECT i.blind_index, i.subject_id, c.purpose, c.status, c.event_id, c.decided_at, c.expires_at
        FROM identities i LEFT JOIN consent_state c ON c.subject_id = i.subject_id
        WHERE i.kind = $1 AND i.blind_index
        """

    static func subjectStateRow(_ row: PostgresRow) throws -> (index: Data, subject: UUID, state: ConsentState?) {
        let (index, subject, purpose, status, event, decided, expires) = try row.decode(
            (Data, UUID, String?, String?, UUID?, Int64?, Int64?).self)
        guard let purpose, let status, let event, let decided else { return (index, subject, nil) }
        return (
            index, subject,
            ConsentState(
                subjectID: subject, purpose: purpose,
                status: try StoreError.stored(ConsentStatus.self, status, column: "consent status"), eventID: event,
                decidedAt: Timestamp.date(micros: decided), expiresAt: expires.map(Timestamp.date(micros:)))
        )
    }

    func subjectStates(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: SubjectStates] {
        guard !blindIndexes.isEmpty else { return [:] }
        return SubjectStates.grouping(
            try await rows(
                Self.subjectStatesQuery + " IN", matching: blindIndexes.map { ByteBuffer(bytes: $0) },
                after: kind.rawValue
            ).map(Self.subjectStateRow))
    }

    func consentState(subjectID: UUID, purpose: String) async throws -> ConsentState? {
        try await rows(
            "SELECT subject_id, purpose, status, event_id, decided_at, expires_at FROM consent_state WHERE subject_id = \(subjectID) AND purpose = \(purpose)"
        ).first.map(Self.state)
    }

    func consentStates(subjectID: UUID) async throws -> [ConsentState] {
        try await rows(
            "SELECT subject_id, purpose, status, event_id, decided_at, expires_at FROM consent_state WHERE subject_id = \(subjectID) ORDER BY purpose"
        ).map(Self.state)
    }

    func consentStates(subjectIDs: [UUID]) async throws -> [ConsentState]? {
        try await rows(
            "SELECT subject_id, purpose, status, event_id, decided_at, expires_at FROM consent_state WHERE subject_id IN",
            matching: subjectIDs
        ).map(Self.state)
    }

    func consentHistory(subjectID: UUID, afterOrdinal: Int64, limit: Int) async throws -> [ConsentEvent] {
        try await rows(
            """
            SELECT id, subject_id, ordinal, purpose, decision, status, method, notice_id, notice_version, source,
                   actor, recorded_at, expires_at, proof_ip_hash, proof_ua_hash, consent_string, confirms,
                   confirmed_at
            FROM consent_events WHERE subject_id = \(subjectID) AND ordinal > \(afterOrdinal) ORDER BY ordinal LIMIT \(limit)
            """
        ).map { row in
            let cells = row.makeRandomAccess()
            return ConsentEvent(
                id: try cells[0].decode(UUID.self), subjectID: try cells[1].decode(UUID.self),
                ordinal: try cells[2].decode(Int64.self), purpose: try cells[3].decode(String.self),
                decision: try StoreError.stored(
                    ConsentDecision.self, try cells[4].decode(String.self), column: "consent_events.decision"),
                status: try StoreError.stored(
                    ConsentStatus.self, try cells[5].decode(String.self), column: "consent status"),
                method: try StoreError.stored(
                    ConsentMethod.self, try cells[6].decode(String.self), column: "consent_events.method"),
                noticeID: try cells[7].decode(String?.self), noticeVersion: try cells[8].decode(String?.self),
                source: try cells[9].decode(String?.self), actor: try cells[10].decode(String.self),
                recordedAt: Timestamp.date(micros: try cells[11].decode(Int64.self)),
                expiresAt: try cells[12].decode(Int64?.self).map(Timestamp.date(micros:)),
                proofIPHash: try cells[13].decode(String?.self), proofUserAgentHash: try cells[14].decode(String?.self),
                consentString: try cells[15].decode(String?.self), confirms: try cells[16].decode(UUID?.self),
                confirmedAt: try cells[17].decode(Int64?.self).map(Timestamp.date(micros:)))
        }
    }

    func audience(purpose: String, mechanism: ConsentMechanism, now: Date, after: UUID?, limit: Int) async throws
        -> [UUID]
    {
        let cursor = after ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        let nowMicros = Timestamp.micros(now)
        let includeCursor = after == nil
        switch mechanism {
        case .optIn:
            return try await rows(
                """
                SELECT subject_id FROM consent_state
                WHERE purpose = \(purpose) AND status = 'granted' AND (expires_at IS NULL OR expires_at > \(nowMicros))
                  AND (subject_id > \(cursor) OR \(includeCursor))
                ORDER BY subject_id LIMIT \(limit)
                """
            ).map { try $0.decode(UUID.self) }
        case .optOut, .noticeOnly:
            return try await rows(
                """
                SELECT s.id FROM subjects s
                LEFT JOIN consent_state c ON c.subject_id = s.id AND c.purpose = \(purpose)
                WHERE s.merged_into IS NULL AND (s.id > \(cursor) OR \(includeCursor))
                  AND (c.status IS NULL OR c.status NOT IN ('denied', 'withdrawn'))
                ORDER BY s.id LIMIT \(limit)
                """
            ).map { try $0.decode(UUID.self) }
        }
    }

    func nextOrdinal(subjectID: UUID) async throws -> Int64 {
        guard
            let row = try await rows(
                "UPDATE subjects SET event_count = event_count + 1 WHERE id = \(subjectID) RETURNING event_count"
            ).first
        else { throw StewardError(.subjectNotFound, "no subject has this id") }
        return try row.decode(Int64.self)
    }

    func moveConsentEvents(from source: UUID, to target: UUID, ordinalOffset: Int64) async throws -> Int {
        // New keys (target, offset + k) lie above every ordinal the target has: no UNIQUE collision.
        let moved = try await rows(
            "UPDATE consent_events SET subject_id = \(target), ordinal = ordinal + \(ordinalOffset) WHERE subject_id = \(source) RETURNING id"
        )
        return moved.count
    }

    func lockSubjects(_ ids: [UUID]) async throws -> [UUID: Int64]? {
        var counters: [UUID: Int64] = [:]
        // Rows are locked in id order (byte order, as PostgreSQL compares uuids), chunk after chunk:
        // FOR UPDATE locks each row as the sort hands it over, whatever order the caller named them in.
        let sorted = ids.sorted { first, second in
            withUnsafeBytes(of: first.uuid) { a in withUnsafeBytes(of: second.uuid) { a.lexicographicallyPrecedes($0) }
            }
        }
        let rows = try await rows(
            "SELECT id, event_count FROM subjects WHERE id IN", matching: sorted, tail: " ORDER BY id FOR UPDATE")
        for row in rows {
            let (id, count) = try row.decode((UUID, Int64).self)
            counters[id] = count
        }
        return counters
    }

    func setOrdinal(subjectID: UUID, to value: Int64) async throws {
        try writes().ordinals[subjectID] = value
    }

    func insertConsentEvent(_ event: ConsentEvent) async throws {
        try writes().events.append(event)
    }

    func upsertConsentState(_ state: ConsentState) async throws {
        answers?.note(.subject(state.subjectID))
        try writes().states.append(state)
    }

    func deleteConsentStates(subjectID: UUID) async throws {
        answers?.note(.subject(subjectID))
        try await run("DELETE FROM consent_state WHERE subject_id = \(subjectID)")
    }

    func insertConfirmation(tokenHash: Data, _ record: ConfirmationRecord) async throws {
        try writes().confirmations.append((tokenHash, record))
    }

    func confirmation(tokenHash: Data) async throws -> ConfirmationRecord? {
        let hash = ByteBuffer(bytes: tokenHash)
        return try await rows(
            "SELECT event_id, subject_id, purpose, expires_at, used_at FROM confirmations WHERE token_hash = \(hash) FOR UPDATE"
        ).first.map { row in
            let (event, subject, purpose, expires, used) = try row.decode((UUID, UUID, String, Int64, Int64?).self)
            return ConfirmationRecord(
                eventID: event, subjectID: subject, purpose: purpose, expiresAt: Timestamp.date(micros: expires),
                usedAt: used.map(Timestamp.date(micros:)))
        }
    }

    func markConfirmationUsed(tokenHash: Data, at: Date) async throws {
        let hash = ByteBuffer(bytes: tokenHash)
        try await run("UPDATE confirmations SET used_at = \(Timestamp.micros(at)) WHERE token_hash = \(hash)")
    }
}
