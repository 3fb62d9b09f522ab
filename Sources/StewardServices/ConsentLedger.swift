public import Foundation
public import StewardCore

/// Operations on the consent ledger that other use cases share, on the ledger role alone.
public enum ConsentLedger {
    /// Moves the ledger of `source` into `target` inside the caller's transaction (a subject merge):
    /// every event of the source is appended after the target's history, keeping its order, and per
    /// purpose the more recent decision of the two becomes the target's current state. Returns how
    /// many events moved.
    public static func merge(
        from source: UUID, into target: UUID, in transaction: any ConsentLedgerWriting
    ) async throws -> Int {
        let targetStates = try await transaction.consentStates(subjectID: target)
        let sourceStates = try await transaction.consentStates(subjectID: source)
        let offset = try await transaction.nextOrdinal(subjectID: target) - 1
        let moved = try await transaction.moveConsentEvents(from: source, to: target, ordinalOffset: offset)
        try await transaction.setOrdinal(subjectID: target, to: offset + Int64(moved))
        let byPurpose = Dictionary(targetStates.map { ($0.purpose, $0) }, uniquingKeysWith: { a, _ in a })
        try await transaction.deleteConsentStates(subjectID: source)
        for state in sourceStates {
            if let existing = byPurpose[state.purpose], existing.decidedAt >= state.decidedAt { continue }
            var adopted = state
            adopted.subjectID = target
            try await transaction.upsertConsentState(adopted)
        }
        return moved
    }
}
