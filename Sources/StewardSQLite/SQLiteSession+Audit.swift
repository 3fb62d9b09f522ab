import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// The audit chain, on SQLiteSession.
extension SQLiteSession {
    func auditEntries(afterSequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try connection.query(
            """
            SELECT sequence, id, at, actor, action, target_type, target_id, outcome, details, previous_hash, hash
            FROM audit_log WHERE sequence > ? ORDER BY sequence LIMIT ?
            """, [.int(afterSequence), .int(Int64(limit))]
        ) { row in
            AuditEntry(
                sequence: row.int(0), id: try row.uuid(1), at: row.time(2),
                draft: AuditDraft(
                    actor: row.text(3), action: row.text(4), targetType: row.text(5), targetID: row.text(6),
                    outcome: row.text(7), details: AuditDetailsCoding.decode(row.text(8))),
                previousHash: row.blob(9), hash: row.blob(10))
        }
    }

    func lockAuditHead() async throws -> (sequence: Int64, hash: Data) {
        // SQLite has one writer: the transaction already excludes every other appender.
        guard
            let head = try connection.query(
                "SELECT sequence, hash FROM audit_head WHERE id = 1", [],
                {
                    ($0.int(0), $0.blob(1))
                }
            ).first
        else { throw StoreError.unavailable("the audit chain head is missing") }
        return head
    }

    func appendAuditEntries(_ entries: [AuditEntry]) async throws {
        for entry in entries {
            try connection.run(
                """
                INSERT INTO audit_log (sequence, id, at, actor, action, target_type, target_id, outcome, details,
                    previous_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .int(entry.sequence), .uuid(entry.id), .time(entry.at), .text(entry.draft.actor),
                    .text(entry.draft.action), .text(entry.draft.targetType), .text(entry.draft.targetID),
                    .text(entry.draft.outcome), .text(AuditDetailsCoding.encode(entry.draft.details)),
                    .blob(entry.previousHash), .blob(entry.hash),
                ])
        }
        if let last = entries.last {
            try connection.run(
                "UPDATE audit_head SET sequence = ?, hash = ? WHERE id = 1", [.int(last.sequence), .blob(last.hash)])
        }
    }
}
