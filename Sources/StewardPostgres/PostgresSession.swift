import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// The store operations over one connection (inside a transaction for writes).
///
/// A write session holds the row writes of its transaction (subjects, identities, events, states,
/// confirmations, ordinal counters, audit entries) in a `WriteBuffer` and sends them as one
/// statement (`flush`), before its next read and before the commit; only the audit chain head's
/// read, which reads nothing buffered, lets a small buffer wait for the commit. A query is a network
/// round trip, so a new-subject record costs five instead of twelve and a 10,000-line import batch a
/// few dozen instead of about ten per line; every read still sees the transaction's own writes
/// (ADRs 0006 and 0007).
struct PostgresSession: StoreTransaction, @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger
    /// Nil for read sessions.
    var buffer: WriteBuffer? = nil

    static func map(_ error: PSQLError) -> any Error {
        let state = error.serverInfo?[.sqlState] ?? "no sqlstate"
        switch state {
        case PostgresError.Code.uniqueViolation.raw: return StoreError.uniqueViolation
        case PostgresError.Code.deadlockDetected.raw, PostgresError.Code.serializationFailure.raw:
            return StoreError.conflict
        default: break
        }
        return StoreError.unavailable("PostgreSQL error \(error.code.description) (\(state))")
    }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await flush()
        return try await connection.query(query, logger: logger).collect()
    }

    func run(_ query: PostgresQuery) async throws {
        try await flush()
        _ = try await connection.query(query, logger: logger).collect()
    }

    /// Sends the buffered writes, parents before children, as one statement where the parameter limit
    /// allows: each table's rows are a data-modifying `WITH` part of it. PostgreSQL checks foreign keys
    /// when the whole statement ends, so a part may reference rows another part inserts; parts do not
    /// see each other's rows otherwise, which is why a new subject's ordinal counter is part of its
    /// insert rather than a later update.
    func flush() async throws {
        guard let buffer, !buffer.isEmpty else { return }
        let pending = buffer.take()
        // Inserts of the same new identities by concurrent transactions then wait on each other in one
        // order (the first to commit wins, the other retries), never crosswise into a deadlock.
        pending.identities.sort {
            $0.kind.rawValue != $1.kind.rawValue
                ? $0.kind.rawValue < $1.kind.rawValue : $0.blindIndex.lexicographicallyPrecedes($1.blindIndex)
        }
        var statement = CompositeStatement()
        try await statement.add(
            "INSERT INTO subjects (id, created_at, event_count)", columns: 3, count: pending.subjects.count, on: self
        ) { binds, row in
            let subject = pending.subjects[row]
            binds.append(subject.id)
            binds.append(subject.createdAt)
            binds.append(pending.ordinals.removeValue(forKey: subject.id) ?? 0)
        }
        try await statement.add(
            "INSERT INTO identities (id, subject_id, kind, blind_index, ciphertext, created_at)", columns: 6,
            count: pending.identities.count, on: self
        ) { binds, row in
            let identity = pending.identities[row]
            binds.append(identity.id)
            binds.append(identity.subjectID)
            binds.append(identity.kind.rawValue)
            binds.append(ByteBuffer(bytes: identity.blindIndex))
            binds.append(ByteBuffer(bytes: identity.ciphertext))
            binds.append(Timestamp.micros(identity.createdAt))
        }
        // Counters of subjects that existed before this flush (new ones went with their insert above).
        let ordinals = Array(pending.ordinals)
        try await statement.add(
            "UPDATE subjects AS s SET event_count = v.count FROM (", columns: 2, count: ordinals.count,
            casts: ["uuid", "bigint"], suffix: ") AS v (id, count) WHERE s.id = v.id", on: self
        ) { binds, row in
            binds.append(ordinals[row].key)
            binds.append(ordinals[row].value)
        }
        try await statement.add(
            """
            INSERT INTO consent_events (id, subject_id, ordinal, purpose, decision, status, method, notice_id,
                notice_version, source, actor, recorded_at, expires_at, proof_ip_hash, proof_ua_hash, consent_string,
                confirms, confirmed_at)
            """, columns: 18, count: pending.events.count, on: self
        ) { binds, row in
            let event = pending.events[row]
            binds.append(event.id)
            binds.append(event.subjectID)
            binds.append(event.ordinal)
            binds.append(event.purpose)
            binds.append(event.decision.rawValue)
            binds.append(event.status.rawValue)
            binds.append(event.method.rawValue)
            binds.append(event.noticeID)
            binds.append(event.noticeVersion)
            binds.append(event.source)
            binds.append(event.actor)
            binds.append(Timestamp.micros(event.recordedAt))
            binds.append(event.expiresAt.map(Timestamp.micros))
            binds.append(event.proofIPHash)
            binds.append(event.proofUserAgentHash)
            binds.append(event.consentString)
            binds.append(event.confirms)
            binds.append(event.confirmedAt.map(Timestamp.micros))
        }
        // One row per key in a statement (ON CONFLICT cannot update a row twice): the last state wins.
        let states = pending.latestStates
        try await statement.add(
            "INSERT INTO consent_state (subject_id, purpose, status, event_id, decided_at, expires_at)", columns: 6,
            count: states.count,
            suffix: """
                 ON CONFLICT (subject_id, purpose) DO UPDATE SET status = excluded.status,
                    event_id = excluded.event_id, decided_at = excluded.decided_at, expires_at = excluded.expires_at
                """, on: self
        ) { binds, row in
            let state = states[row]
            binds.append(state.subjectID)
            binds.append(state.purpose)
            binds.append(state.status.rawValue)
            binds.append(state.eventID)
            binds.append(Timestamp.micros(state.decidedAt))
            binds.append(state.expiresAt.map(Timestamp.micros))
        }
        try await statement.add(
            "INSERT INTO confirmations (token_hash, event_id, subject_id, purpose, expires_at, used_at)", columns: 6,
            count: pending.confirmations.count, on: self
        ) { binds, row in
            let (hash, record) = pending.confirmations[row]
            binds.append(ByteBuffer(bytes: hash))
            binds.append(record.eventID)
            binds.append(record.subjectID)
            binds.append(record.purpose)
            binds.append(Timestamp.micros(record.expiresAt))
            binds.append(record.usedAt.map(Timestamp.micros))
        }
        try await statement.add(
            """
            INSERT INTO audit_log (sequence, id, at, actor, action, target_type, target_id, outcome, details,
                previous_hash, hash)
            """, columns: 11, count: pending.audit.count, on: self
        ) { binds, row in
            let entry = pending.audit[row]
            binds.append(entry.sequence)
            binds.append(entry.id)
            binds.append(Timestamp.micros(entry.at))
            binds.append(entry.draft.actor)
            binds.append(entry.draft.action)
            binds.append(entry.draft.targetType)
            binds.append(entry.draft.targetID)
            binds.append(entry.draft.outcome)
            binds.append(AuditDetailsCoding.encode(entry.draft.details))
            binds.append(ByteBuffer(bytes: entry.previousHash))
            binds.append(ByteBuffer(bytes: entry.hash))
        }
        if let last = pending.audit.last {
            try await statement.add(
                parameters: 2, on: self,
                sql: { "UPDATE audit_head SET sequence = $\($0), hash = $\($0 + 1) WHERE id = 1" }
            ) { binds in
                binds.append(last.sequence)
                binds.append(ByteBuffer(bytes: last.hash))
            }
        }
        try await statement.send(on: self)
    }

    fileprivate func send(_ sql: String, _ binds: PostgresBindings) async throws {
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).collect()
    }

    // MARK: Reads

    func subjectID(kind: IdentityKind, blindIndex: Data) async throws -> UUID? {
        let index = ByteBuffer(bytes: blindIndex)
        return try await rows(
            "SELECT subject_id FROM identities WHERE kind = \(kind.rawValue) AND blind_index = \(index)"
        )
        .first.map { try $0.decode(UUID.self) }
    }

    func subjectIDs(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: UUID]? {
        var found: [Data: UUID] = [:]
        let rows = try await rows(
            "SELECT blind_index, subject_id FROM identities WHERE kind = $1 AND blind_index IN",
            matching: blindIndexes.map { ByteBuffer(bytes: $0) }, after: kind.rawValue)
        for row in rows {
            let (index, subject) = try row.decode((Data, UUID).self)
            found[index] = subject
        }
        return found
    }

    /// `head (…values…) tail`, one statement per 10,000 values, the list's placeholders numbered after
    /// an optional `leading` parameter ($1); the rows of every statement, in order.
    private func rows<Value: PostgresNonThrowingEncodable>(
        _ head: String, matching values: [Value], after leading: String? = nil, tail: String = ""
    ) async throws -> [PostgresRow] {
        var result: [PostgresRow] = []
        var start = 0
        while start < values.count {
            let chunk = values[start..<min(values.count, start + 10_000)]
            var binds = PostgresBindings(capacity: chunk.count + 1)
            if let leading { binds.append(leading) }
            var sql = head + " ("
            for index in chunk.indices {
                sql += (index == chunk.startIndex ? "$" : ", $") + String(binds.count + 1)
                binds.append(chunk[index])
            }
            result += try await rows(PostgresQuery(unsafeSQL: sql + ")" + tail, binds: binds))
            start += chunk.count
        }
        return result
    }

    func resolveSubject(_ id: UUID) async throws -> UUID? {
        var current = id
        for _ in 0..<16 {
            guard let row = try await rows("SELECT merged_into FROM subjects WHERE id = \(current)").first else {
                return nil
            }
            guard let next = try row.decode(UUID?.self) else { return current }
            current = next
        }
        return nil
    }

    func identities(subjectID: UUID) async throws -> [IdentityRecord] {
        try await rows(
            "SELECT id, subject_id, kind, blind_index, ciphertext, created_at FROM identities WHERE subject_id = \(subjectID) ORDER BY created_at, id"
        ).map { row in
            let (id, subject, kind, index, ciphertext, created) = try row.decode(
                (UUID, UUID, String, Data, Data, Int64).self)
            return IdentityRecord(
                id: id, subjectID: subject,
                kind: try StoreError.stored(IdentityKind.self, kind, column: "identities.kind"), blindIndex: index,
                ciphertext: ciphertext, createdAt: Timestamp.date(micros: created))
        }
    }

    static func state(_ row: PostgresRow) throws -> ConsentState {
        let (subject, purpose, status, event, decided, expires) = try row.decode(
            (UUID, String, String, UUID, Int64, Int64?).self)
        return ConsentState(
            subjectID: subject, purpose: purpose,
            status: try StoreError.stored(ConsentStatus.self, status, column: "consent status"), eventID: event,
            decidedAt: Timestamp.date(micros: decided), expiresAt: expires.map(Timestamp.date(micros:)))
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

    func auditEntries(afterSequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await rows(
            """
            SELECT sequence, id, at, actor, action, target_type, target_id, outcome, details, previous_hash, hash
            FROM audit_log WHERE sequence > \(afterSequence) ORDER BY sequence LIMIT \(limit)
            """
        ).map { row in
            let (sequence, id, at, actor, action, targetType, targetID, outcome, details, previous, hash) =
                try row.decode(
                    (Int64, UUID, Int64, String, String, String, String, String, String, Data, Data).self)
            return AuditEntry(
                sequence: sequence, id: id, at: Timestamp.date(micros: at),
                draft: AuditDraft(
                    actor: actor, action: action, targetType: targetType, targetID: targetID, outcome: outcome,
                    details: AuditDetailsCoding.decode(details)),
                previousHash: previous, hash: hash)
        }
    }

    static func apiKeyQuery(where condition: String, binds: [ByteBuffer]) -> PostgresQuery {
        var bindings = PostgresBindings()
        for bind in binds { bindings.append(bind) }
        return PostgresQuery(
            unsafeSQL:
                "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys WHERE \(condition)",
            binds: bindings)
    }

    static func apiKey(_ row: PostgresRow) throws -> APIKeyRecord {
        let (id, name, role, prefix, created, revoked, _) = try row.decode(
            (UUID, String, String, String, Int64, Int64?, Data).self)
        return APIKeyRecord(
            id: id, name: name, role: try StoreError.stored(Role.self, role, column: "api_keys.role"), prefix: prefix,
            createdAt: Timestamp.date(micros: created), revokedAt: revoked.map(Timestamp.date(micros:)))
    }

    func apiKeys() async throws -> [APIKeyRecord] {
        try await rows(
            "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys ORDER BY created_at, id"
        ).map(Self.apiKey)
    }

    func apiKey(id: UUID) async throws -> APIKeyRecord? {
        try await rows(
            "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys WHERE id = \(id)"
        ).first.map(Self.apiKey)
    }

    func setting(_ key: String) async throws -> String? {
        try await rows("SELECT value FROM settings WHERE key = \(key)").first.map { try $0.decode(String.self) }
    }

    func settings(prefix: String) async throws -> [(key: String, value: String)] {
        try await rows("SELECT key, value FROM settings WHERE left(key, length(\(prefix))) = \(prefix) ORDER BY key")
            .map { try $0.decode((String, String).self) }
            .map { (key: $0.0, value: $0.1) }
    }

    // MARK: Writes

    /// The transaction's buffer: every row insert goes through it and is sent by `flush` (ADR 0006).
    /// A read session has none, and a write through one is a programming error, refused.
    func writes() throws -> WriteBuffer {
        guard let buffer else { throw StoreError.integrity("a write was attempted on a read session") }
        return buffer
    }

    func insertSubject(id: UUID, createdAt: Date) async throws {
        try writes().subjects.append((id, Timestamp.micros(createdAt)))
    }

    func insertIdentity(_ identity: IdentityRecord) async throws {
        try writes().identities.append(identity)
    }

    func reassignIdentity(id: UUID, to subjectID: UUID, ciphertext: Data) async throws {
        let buffer = ByteBuffer(bytes: ciphertext)
        try await run("UPDATE identities SET subject_id = \(subjectID), ciphertext = \(buffer) WHERE id = \(id)")
    }

    func markSubjectMerged(_ source: UUID, into target: UUID, at: Date) async throws {
        try await run(
            "UPDATE subjects SET merged_into = \(target), merged_at = \(Timestamp.micros(at)) WHERE id = \(source)")
    }

    func nextOrdinal(subjectID: UUID) async throws -> Int64 {
        guard
            let row = try await rows(
                "UPDATE subjects SET event_count = event_count + 1 WHERE id = \(subjectID) RETURNING event_count"
            ).first
        else { throw StewardError.notFound("subject.not_found", "no subject has this id") }
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
        try writes().states.append(state)
    }

    func deleteConsentStates(subjectID: UUID) async throws {
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

    func insertAPIKey(_ key: APIKeyRecord, hash: Data) async throws {
        let buffer = ByteBuffer(bytes: hash)
        let revoked = key.revokedAt.map(Timestamp.micros)
        try await run(
            """
            INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at, revoked_at)
            VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(buffer), \(Timestamp.micros(key.createdAt)), \(revoked))
            """)
    }

    func revokeAPIKey(id: UUID, at: Date) async throws {
        try await run(
            "UPDATE api_keys SET revoked_at = \(Timestamp.micros(at)) WHERE id = \(id) AND revoked_at IS NULL")
    }

    /// The chain head is one row every writer locks until its commit, so it is taken last and held
    /// briefly: a small buffer is not flushed first but rides in the commit's one statement (the head
    /// query reads nothing buffered). A buffer with audit entries is flushed (the head it updates is
    /// what this reads), and so is a large one (a bulk batch), so the head waits on no big insert.
    func lockAuditHead() async throws -> (sequence: Int64, hash: Data) {
        if let buffer, !buffer.audit.isEmpty || buffer.rowCount > 64 { try await flush() }
        let query: PostgresQuery = "SELECT sequence, hash FROM audit_head WHERE id = 1 FOR UPDATE"
        guard let row = try await connection.query(query, logger: logger).collect().first else {
            throw StoreError.unavailable("the audit chain head is missing")
        }
        return try row.decode((Int64, Data).self)
    }

    func appendAuditEntries(_ entries: [AuditEntry]) async throws {
        try writes().audit += entries
    }

    func deleteSetting(_ key: String) async throws {
        try await run("DELETE FROM settings WHERE key = \(key)")
    }

    func setSetting(_ key: String, value: String) async throws {
        try await run(
            "INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    }
}

/// The inserts a write session has not sent yet. One transaction's, used by one task at a time.
final class WriteBuffer: @unchecked Sendable {
    var subjects: [(id: UUID, createdAt: Int64)] = []
    var identities: [IdentityRecord] = []
    var ordinals: [UUID: Int64] = [:]
    var events: [ConsentEvent] = []
    var states: [ConsentState] = []
    var confirmations: [(Data, ConfirmationRecord)] = []
    var audit: [AuditEntry] = []

    var rowCount: Int {
        subjects.count + identities.count + ordinals.count + events.count + states.count + confirmations.count
            + audit.count
    }

    var isEmpty: Bool {
        subjects.isEmpty && identities.isEmpty && ordinals.isEmpty && events.isEmpty && states.isEmpty
            && confirmations.isEmpty && audit.isEmpty
    }

    /// Hands over what is buffered and starts empty.
    func take() -> WriteBuffer {
        let taken = WriteBuffer()
        swap(&taken.subjects, &subjects)
        swap(&taken.identities, &identities)
        swap(&taken.ordinals, &ordinals)
        swap(&taken.events, &events)
        swap(&taken.states, &states)
        swap(&taken.confirmations, &confirmations)
        swap(&taken.audit, &audit)
        return taken
    }

    /// The last state written for each (subject, purpose), in first-written order.
    var latestStates: [ConsentState] {
        var position: [String: Int] = [:]
        var latest: [ConsentState] = []
        for state in states {
            let key = state.subjectID.uuidString + "/" + state.purpose
            if let index = position[key] {
                latest[index] = state
            } else {
                position[key] = latest.count
                latest.append(state)
            }
        }
        return latest
    }
}

/// Several writes as one statement, `WITH w0 AS (write), w1 AS (write) … last write`, sent when the
/// next rows would pass the parameter budget (PostgreSQL allows 65,535) and at the end. Placeholders
/// are numbered across the parts.
struct CompositeStatement {
    static let parameterBudget = 30_000
    private var parts: [String] = []
    private var binds = PostgresBindings()
    private var parameters = 0

    /// `head VALUES (…), (…) suffix` for `count` rows of `columns` values. `casts` types the
    /// placeholders where PostgreSQL cannot infer them (a VALUES list outside INSERT).
    mutating func add(
        _ head: String, columns: Int, count: Int, casts: [String]? = nil, suffix: String = "",
        on session: PostgresSession, bind: (inout PostgresBindings, Int) -> Void
    ) async throws {
        var start = 0
        while start < count {
            if parameters + columns > Self.parameterBudget { try await send(on: session) }
            let end = min(count, start + (Self.parameterBudget - parameters) / columns)
            var sql = head + " VALUES "
            for row in start..<end {
                sql += row == start ? "(" : ", ("
                for column in 0..<columns {
                    parameters += 1
                    sql += (column == 0 ? "$" : ", $") + String(parameters)
                    if let casts { sql += "::" + casts[column] }
                }
                sql += ")"
                bind(&binds, row)
            }
            parts.append(sql + suffix)
            start = end
        }
    }

    /// A write of `count` parameters; `sql` writes it given the number of its first placeholder.
    mutating func add(
        parameters count: Int, on session: PostgresSession, sql: (Int) -> String,
        bind: (inout PostgresBindings) -> Void
    ) async throws {
        if parameters + count > Self.parameterBudget { try await send(on: session) }
        parts.append(sql(parameters + 1))
        parameters += count
        bind(&binds)
    }

    mutating func send(on session: PostgresSession) async throws {
        guard let last = parts.last else { return }
        var sql = ""
        for (index, part) in parts.dropLast().enumerated() {
            sql += (index == 0 ? "WITH w" : ", w") + String(index) + " AS (" + part + ")"
        }
        sql += (sql.isEmpty ? "" : " ") + last
        try await session.send(sql, binds)
        parts.removeAll()
        binds = PostgresBindings()
        parameters = 0
    }
}
