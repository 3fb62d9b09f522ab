import Foundation
public import StewardCore

/// Appends to and verifies the tamper-evident audit chain.
///
/// Every append happens inside the caller's transaction, under the chain-head lock, so an entry is
/// committed if and only if the change it records is.
public struct AuditLog: Sendable {
    let sealer: any AuditSealer
    let runtime: Runtime

    public init(sealer: any AuditSealer, runtime: Runtime) {
        self.sealer = sealer
        self.runtime = runtime
    }

    /// Seals `drafts` onto the chain inside `transaction`.
    @discardableResult
    public func append(_ drafts: [AuditDraft], in transaction: any AuditWriting) async throws -> [AuditEntry] {
        guard !drafts.isEmpty else { return [] }
        let head = try await transaction.lockAuditHead()
        var previous = head.hash
        var sequence = head.sequence
        let at = runtime.nowMicros()
        var entries: [AuditEntry] = []
        entries.reserveCapacity(drafts.count)
        for draft in drafts {
            sequence += 1
            let id = runtime.newID()
            let canonical = AuditEntry.canonicalBytes(sequence: sequence, id: id, at: at, draft: draft)
            let hash = sealer.seal(previousHash: previous, canonical: canonical)
            entries.append(
                AuditEntry(sequence: sequence, id: id, at: at, draft: draft, previousHash: previous, hash: hash))
            previous = hash
        }
        try await transaction.appendAuditEntries(entries)
        return entries
    }

    /// The outcome of recomputing the chain.
    public struct Verification: Sendable, Equatable {
        public var checked: Int
        /// The first entry whose stored hashes do not match the recomputation, if any.
        public var firstBroken: Int64?
        public var reason: String?
        public var isIntact: Bool { firstBroken == nil }
    }

    /// Recomputes the whole chain from the store, page by page, and names the first broken entry.
    public func verify(
        store: any StewardStore, pageSize: Int = 5_000, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> Verification {
        var previous = AuditEntry.genesisHash
        var expectedSequence: Int64 = 1
        var checked = 0
        while true {
            let after = expectedSequence - 1
            let page = try await store.read { try await $0.auditEntries(afterSequence: after, limit: pageSize) }
            if page.isEmpty { break }
            for entry in page {
                if entry.sequence != expectedSequence {
                    return Verification(
                        checked: checked, firstBroken: expectedSequence,
                        reason: "entry \(expectedSequence) is missing (next stored is \(entry.sequence))")
                }
                if entry.previousHash != previous {
                    return Verification(
                        checked: checked, firstBroken: entry.sequence,
                        reason: "previous-hash link does not match entry \(entry.sequence - 1)")
                }
                let canonical = AuditEntry.canonicalBytes(
                    sequence: entry.sequence, id: entry.id, at: entry.at, draft: entry.draft)
                let hash = sealer.seal(previousHash: previous, canonical: canonical)
                if hash != entry.hash {
                    return Verification(
                        checked: checked, firstBroken: entry.sequence,
                        reason: "content does not match its hash (the entry was altered)")
                }
                previous = hash
                expectedSequence += 1
                checked += 1
            }
            progress?(checked)
        }
        return Verification(checked: checked, firstBroken: nil, reason: nil)
    }
}

extension AuditLog {
    /// Records the policy in force when it differs from the one last recorded: the audit entry and the
    /// stored digest change in one transaction. Returns whether an entry was written.
    @discardableResult
    public func recordPolicyLoad(_ policy: PolicySet, store: any StewardStore, actor: String) async throws -> Bool {
        try await store.write { transaction in
            if try await transaction.setting("policy.digest") == policy.digest { return false }
            try await transaction.setSetting("policy.digest", value: policy.digest)
            try await self.append(
                [
                    AuditDraft(
                        actor: actor, action: "policy.loaded", targetType: "policy", targetID: policy.digest,
                        details: ["purposes": String(policy.purposes.count), "notices": String(policy.notices.count)])
                ], in: transaction)
            return true
        }
    }
}
