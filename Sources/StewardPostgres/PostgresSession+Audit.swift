import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// The audit chain, on PostgresSession.
extension PostgresSession {
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
}
