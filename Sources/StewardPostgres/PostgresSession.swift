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
    /// A write's answer changes (ADR 0013); nil for read sessions.
    var answers: AnswerChangeLog? = nil

    /// Appends the write's answer changes to the feed at the next position (the feed row's lock,
    /// held to the commit, orders positions as commits). The other instances are woken after the
    /// commit (`PostgresStore.write`), not by a NOTIFY in this transaction: PostgreSQL serialises
    /// the commits of every transaction that notifies, across the whole cluster.
    func publishAnswerChanges() async throws {
        guard let answers, !answers.isEmpty else { return }
        let now = Timestamp.micros(Date())
        // Arrays without NULLs: the nil UUID and the empty kind stand for "none".
        let none = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        var subjects: [UUID] = []
        var kinds: [String] = []
        var tags: [Int64] = []
        let changes = answers.published
        for change in changes {
            switch change {
            case .subject(let id):
                subjects.append(id)
                kinds.append("")
                tags.append(0)
            case .identity(let kind, let tag):
                subjects.append(none)
                kinds.append(kind.rawValue)
                tags.append(tag)
            case .everything:
                subjects.append(none)
                kinds.append("")
                tags.append(0)
            }
        }
        // One round trip: the position taken and the changes inserted at it, counted so that a
        // missing feed row is an error, never a change left unpublished.
        let inserted = try await rows(
            """
            WITH p AS (UPDATE answer_feed SET position = position + 1 WHERE id = 1 RETURNING position),
            ins AS (
                INSERT INTO answer_changes (position, subject_id, identity_kind, identity_tag, recorded_at)
                SELECT p.position, NULLIF(c.s, \(none)), NULLIF(c.k, ''), CASE WHEN c.k = '' THEN NULL ELSE c.t END, \(now)
                FROM p, unnest(\(subjects)::uuid[], \(kinds)::text[], \(tags)::int8[]) AS c(s, k, t)
                RETURNING 1
            )
            SELECT count(*)::int8 FROM ins
            """
        ).first?.decode(Int64.self)
        guard inserted == Int64(changes.count) else { throw StoreError.integrity("answer_feed has no row") }
    }

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

    /// `head (…values…) tail`, one statement per 10,000 values, the list's placeholders numbered after
    /// an optional `leading` parameter ($1); the rows of every statement, in order.
    func rows<Value: PostgresNonThrowingEncodable>(
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

    /// The transaction's buffer: every row insert goes through it and is sent by `flush` (ADR 0006).
    /// A read session has none, and a write through one is a programming error, refused.
    func writes() throws -> WriteBuffer {
        guard let buffer else { throw StoreError.integrity("a write was attempted on a read session") }
        return buffer
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
