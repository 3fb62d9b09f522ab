import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// The consent ledger: states, events, ordinals, double opt-in tokens, on SQLiteSession.
extension SQLiteSession {
    static let stateColumns = "SELECT subject_id, purpose, status, event_id, decided_at, expires_at FROM consent_state"

    static func state(_ row: SQLiteConnection.Row) throws -> ConsentState {
        ConsentState(
            subjectID: try row.uuid(0), purpose: row.text(1),
            status: try StoreError.stored(ConsentStatus.self, row.text(2), column: "consent status"),
            eventID: try row.uuid(3), decidedAt: row.time(4), expiresAt: row.optionalTime(5))
    }

    /// An identity's subject and each of its states (none: one row with NULL state columns); the
    /// caller appends ` = ?` or ` IN (…)` for the blind index.
    static let subjectStatesQuery = """
        SELECT i.blind_index, i.subject_id, c.purpose, c.status, c.event_id, c.decided_at, c.expires_at
        FROM identities i LEFT JOIN consent_state c ON c.subject_id = i.subject_id
        WHERE i.kind = ? AND i.blind_index
        """

    static func subjectStateRow(_ row: SQLiteConnection.Row) throws -> (
        index: Data, subject: UUID, state: ConsentState?
    ) {
        let subject = try row.uuid(1)
        guard !row.isNull(2) else { return (row.blob(0), subject, nil) }
        return (
            row.blob(0), subject,
            ConsentState(
                subjectID: subject, purpose: row.text(2),
                status: try StoreError.stored(ConsentStatus.self, row.text(3), column: "consent status"),
                eventID: try row.uuid(4), decidedAt: row.time(5), expiresAt: row.optionalTime(6))
        )
    }

    func subjectStates(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: SubjectStates] {
        var rows: [(index: Data, subject: UUID, state: ConsentState?)] = []
        for start in stride(from: 0, to: blindIndexes.count, by: 500) {
            let chunk = blindIndexes[start..<min(blindIndexes.count, start + 500)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            rows += try connection.query(
                Self.subjectStatesQuery + " IN (\(marks))", [.text(kind.rawValue)] + chunk.map { .blob($0) },
                Self.subjectStateRow)
        }
        return SubjectStates.grouping(rows)
    }

    func consentState(subjectID: UUID, purpose: String) async throws -> ConsentState? {
        try connection.query(
            Self.stateColumns + " WHERE subject_id = ? AND purpose = ?", [.uuid(subjectID), .text(purpose)],
            Self.state
        ).first
    }

    func consentStates(subjectID: UUID) async throws -> [ConsentState] {
        try connection.query(
            Self.stateColumns + " WHERE subject_id = ? ORDER BY purpose", [.uuid(subjectID)], Self.state)
    }

    func consentHistory(subjectID: UUID, afterOrdinal: Int64, limit: Int) async throws -> [ConsentEvent] {
        try connection.query(
            """
            SELECT id, subject_id, ordinal, purpose, decision, status, method, notice_id, notice_version, source,
                   actor, recorded_at, expires_at, proof_ip_hash, proof_ua_hash, consent_string, confirms,
                   confirmed_at
            FROM consent_events WHERE subject_id = ? AND ordinal > ? ORDER BY ordinal LIMIT ?
            """, [.uuid(subjectID), .int(afterOrdinal), .int(Int64(limit))]
        ) { row in
            ConsentEvent(
                id: try row.uuid(0), subjectID: try row.uuid(1), ordinal: row.int(2), purpose: row.text(3),
                decision: try StoreError.stored(ConsentDecision.self, row.text(4), column: "consent_events.decision"),
                status: try StoreError.stored(ConsentStatus.self, row.text(5), column: "consent status"),
                method: try StoreError.stored(ConsentMethod.self, row.text(6), column: "consent_events.method"),
                noticeID: row.optionalText(7),
                noticeVersion: row.optionalText(8), source: row.optionalText(9), actor: row.text(10),
                recordedAt: row.time(11), expiresAt: row.optionalTime(12), proofIPHash: row.optionalText(13),
                proofUserAgentHash: row.optionalText(14), consentString: row.optionalText(15),
                confirms: try row.optionalUUID(16), confirmedAt: row.optionalTime(17))
        }
    }

    func audience(purpose: String, mechanism: ConsentMechanism, now: Date, after: UUID?, limit: Int) async throws
        -> [UUID]
    {
        // Blobs order bytewise, as the lower-case text form did; the empty blob sorts before every id.
        let cursor = after.map { SQLValue.uuid($0) } ?? .blob(Data())
        switch mechanism {
        case .optIn:
            return try connection.query(
                """
                SELECT subject_id FROM consent_state
                WHERE purpose = ? AND status = 'granted' AND (expires_at IS NULL OR expires_at > ?) AND subject_id > ?
                ORDER BY subject_id LIMIT ?
                """, [.text(purpose), .time(now), cursor, .int(Int64(limit))]
            ) { try $0.uuid(0) }
        case .optOut, .noticeOnly:
            return try connection.query(
                """
                SELECT s.id FROM subjects s
                LEFT JOIN consent_state c ON c.subject_id = s.id AND c.purpose = ?
                WHERE s.merged_into IS NULL AND s.id > ? AND (c.status IS NULL OR c.status NOT IN ('denied', 'withdrawn'))
                ORDER BY s.id LIMIT ?
                """, [.text(purpose), cursor, .int(Int64(limit))]
            ) { try $0.uuid(0) }
        }
    }

    func nextOrdinal(subjectID: UUID) async throws -> Int64 {
        // Two statements rather than UPDATE … RETURNING: SQLite runs RETURNING through a temporary
        // table on every execution. The writer is alone on its connection, so nothing runs between.
        guard
            try connection.run(
                "UPDATE subjects SET event_count = event_count + 1 WHERE id = ?", [.uuid(subjectID)]) == 1,
            let value = try connection.query(
                "SELECT event_count FROM subjects WHERE id = ?", [.uuid(subjectID)], { $0.int(0) }
            ).first
        else { throw StewardError(.subjectNotFound, "no subject has this id") }
        return value
    }

    func moveConsentEvents(from source: UUID, to target: UUID, ordinalOffset: Int64) async throws -> Int {
        // New keys (target, offset + k) lie above every ordinal the target has: no UNIQUE collision.
        return try connection.run(
            "UPDATE consent_events SET subject_id = ?, ordinal = ordinal + ? WHERE subject_id = ?",
            [.uuid(target), .int(ordinalOffset), .uuid(source)])
    }

    func setOrdinal(subjectID: UUID, to value: Int64) async throws {
        try connection.run("UPDATE subjects SET event_count = ? WHERE id = ?", [.int(value), .uuid(subjectID)])
    }

    func insertConsentEvent(_ event: ConsentEvent) async throws {
        try connection.run(
            """
            INSERT INTO consent_events (id, subject_id, ordinal, purpose, decision, status, method, notice_id,
                notice_version, source, actor, recorded_at, expires_at, proof_ip_hash, proof_ua_hash, consent_string,
                confirms, confirmed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .uuid(event.id), .uuid(event.subjectID), .int(event.ordinal), .text(event.purpose),
                .text(event.decision.rawValue), .text(event.status.rawValue), .text(event.method.rawValue),
                .text(event.noticeID), .text(event.noticeVersion), .text(event.source), .text(event.actor),
                .time(event.recordedAt), .time(event.expiresAt), .text(event.proofIPHash),
                .text(event.proofUserAgentHash), .text(event.consentString), .uuid(event.confirms),
                .time(event.confirmedAt),
            ])
    }

    func upsertConsentState(_ state: ConsentState) async throws {
        answers?.note(.subject(state.subjectID))
        try connection.run(
            """
            INSERT INTO consent_state (subject_id, purpose, status, event_id, decided_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (subject_id, purpose) DO UPDATE SET status = excluded.status, event_id = excluded.event_id,
                decided_at = excluded.decided_at, expires_at = excluded.expires_at
            """,
            [
                .uuid(state.subjectID), .text(state.purpose), .text(state.status.rawValue), .uuid(state.eventID),
                .time(state.decidedAt), .time(state.expiresAt),
            ])
    }

    func deleteConsentStates(subjectID: UUID) async throws {
        answers?.note(.subject(subjectID))
        try connection.run("DELETE FROM consent_state WHERE subject_id = ?", [.uuid(subjectID)])
    }

    func insertConfirmation(tokenHash: Data, _ record: ConfirmationRecord) async throws {
        try connection.run(
            "INSERT INTO confirmations (token_hash, event_id, subject_id, purpose, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .blob(tokenHash), .uuid(record.eventID), .uuid(record.subjectID), .text(record.purpose),
                .time(record.expiresAt), .time(record.usedAt),
            ])
    }

    func confirmation(tokenHash: Data) async throws -> ConfirmationRecord? {
        try connection.query(
            "SELECT event_id, subject_id, purpose, expires_at, used_at FROM confirmations WHERE token_hash = ?",
            [.blob(tokenHash)]
        ) { row in
            ConfirmationRecord(
                eventID: try row.uuid(0), subjectID: try row.uuid(1), purpose: row.text(2), expiresAt: row.time(3),
                usedAt: row.optionalTime(4))
        }.first
    }

    func markConfirmationUsed(tokenHash: Data, at: Date) async throws {
        try connection.run("UPDATE confirmations SET used_at = ? WHERE token_hash = ?", [.time(at), .blob(tokenHash)])
    }
}
