public import Foundation
public import StewardCore

/// Reads of the hash-chained audit log.
public protocol AuditReading: Sendable {
    /// Audit entries with sequence greater than `afterSequence`, in order.
    func auditEntries(afterSequence: Int64, limit: Int) async throws -> [AuditEntry]
}

/// Appends to the audit log, in the transaction of the change it records.
public protocol AuditWriting: AuditReading {
    /// Locks the audit chain head until commit and returns it (sequence 0 and the genesis hash when empty).
    func lockAuditHead() async throws -> (sequence: Int64, hash: Data)
    /// Inserts sealed entries and moves the head to the last one.
    func appendAuditEntries(_ entries: [AuditEntry]) async throws
}
