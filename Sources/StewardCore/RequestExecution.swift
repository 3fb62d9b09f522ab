public import Foundation

/// What a request's work did in one customer system: the receipt Steward keeps and audits. Counts,
/// field names, strategies and reasons — never a value (issue 18 item 5).
public struct SystemReceipt: Sendable, Hashable, Codable {
    public struct Collection: Sendable, Hashable, Codable {
        public var collection: String
        /// Rows of the subject found.
        public var located: Int
        /// Rows read (access, portability, rectification).
        public var read: Int
        public var deleted: Int
        /// Rows whose fields were changed.
        public var changed: Int
        /// Field → strategy (`null`, `mask`, `hash`) of the changed fields.
        public var fields: [String: String]
        /// Fields kept, and why.
        public var held: [String: String]
        /// Why the subject's rows were kept (changed field by field) instead of deleted.
        public var rowKept: String?

        public init(collection: String, located: Int) {
            self.collection = collection
            self.located = located
            self.read = 0
            self.deleted = 0
            self.changed = 0
            self.fields = [:]
            self.held = [:]
        }
    }

    public var system: String
    public var type: RequestType
    /// In plan order: parents located first, effects children first.
    public var collections: [Collection]
    /// The re-read after the changes found no personal value of the subject left in a mapped field
    /// that is not held, and no row to act on again. (Access: the read completed.)
    public var verified: Bool
    /// References to another system's collections that this system's work could not follow.
    public var crossSystemLookups: [String]
    /// Who counted and verified: nil for Steward's own work and re-read (SQL systems); `system`
    /// when an http system reported its outcome, which Steward cannot re-read.
    public var reportedBy: String?

    public init(
        system: String, type: RequestType, collections: [Collection], verified: Bool, crossSystemLookups: [String] = [],
        reportedBy: String? = nil
    ) {
        self.system = system
        self.type = type
        self.collections = collections
        self.verified = verified
        self.crossSystemLookups = crossSystemLookups
        self.reportedBy = reportedBy
    }

    /// Rows deleted or changed in all.
    public var rowsAffected: Int { collections.reduce(0) { $0 + $1.deleted + $1.changed } }
    public var rowsLocated: Int { collections.reduce(0) { $0 + $1.located } }
}

extension SystemReceipt.Collection {
    /// `located 4; changed 4 (card_last4: mask, iban: mask); held amount_cents`: counts and names,
    /// for the audit entry and the command line.
    public var summary: String {
        var parts = ["located \(located)"]
        if read > 0 { parts.append("read \(read)") }
        if deleted > 0 { parts.append("deleted \(deleted)") }
        if changed > 0 {
            parts.append(
                "changed \(changed) ("
                    + fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")")
        }
        if !held.isEmpty { parts.append("held " + held.keys.sorted().joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }
}

/// The subject's rows read for access or portability: collection → rows, each a column → value
/// (text, nil for NULL). Personal data: sealed before it is stored, never logged.
public struct SubjectRows: Sendable, Hashable, Codable {
    public var system: String
    public var collections: [String: [[String: String?]]]

    public init(system: String, collections: [String: [[String: String?]]] = [:]) {
        self.system = system
        self.collections = collections
    }
}

/// The subject's identity values by kind, opened from the vault for one job and not kept — or,
/// to reapply erasures, identities known only by a keyed hash (`recognition`).
public struct SubjectIdentities: Sendable {
    public var values: [IdentityKind: [String]]
    public var recognition: IdentityRecognition?

    public init(_ values: [IdentityKind: [String]], recognition: IdentityRecognition? = nil) {
        self.values = values
        self.recognition = recognition
    }

    public var kinds: Set<IdentityKind> {
        Set(values.filter { !$0.value.isEmpty }.keys).union(recognition?.kinds ?? [])
    }
}

/// Identities known only by a keyed hash (the suppression entries of completed erasures): a row whose
/// identity field of one of `kinds` makes `matches` true is one of theirs. The connector reads those
/// identity columns whole and compares in memory — a restore's runbook, not the hot path.
public struct IdentityRecognition: Sendable {
    public var kinds: Set<IdentityKind>
    public var matches: @Sendable (IdentityKind, String) -> Bool

    public init(kinds: Set<IdentityKind>, matches: @escaping @Sendable (IdentityKind, String) -> Bool) {
        self.kinds = kinds
        self.matches = matches
    }
}

extension RequestPlan {
    /// The part of the plan that acts in one system.
    public func only(system: String) -> RequestPlan {
        RequestPlan(
            locate: locate.filter { $0.target.system == system },
            effects: effects.filter { $0.target.system == system },
            unreached: unreached.filter { $0.system == system })
    }

    /// The systems the plan locates rows in, in map order of first appearance.
    public var systems: [String] {
        var seen: [String] = []
        for step in locate where !seen.contains(step.target.system) { seen.append(step.target.system) }
        return seen
    }
}

extension RequestType {
    /// Whether the request reads or changes the customer's systems (the others record a state in
    /// Steward that the consent check enforces).
    public var touchesCustomerData: Bool {
        switch self {
        case .access, .portability, .erasure, .rectification: true
        case .restriction, .objection, .optOutSale, .limitSensitive: false
        }
    }

    /// Whether the request only reads.
    public var reads: Bool { self == .access || self == .portability }
}

/// One delivery of a request to an `http` system: what the system is asked to do, and the id its
/// answer or callback must name. The id is the delivery's `Idempotency-Key`: a resend after a
/// crash carries the same one; a new attempt after the system reported failure gets a new one.
public struct SystemDelivery: Sendable, Hashable {
    public var request: UUID
    public var id: UUID
    public var type: RequestType
    public var regime: String
    public var dueAt: Date
    /// A rectification's corrected values (personal data: sent to the system, never logged).
    public var corrections: [Correction]
    /// Identities given as SHA-256: sent as such, for the system to match.
    public var hashedIdentities: [HashedIdentity] = []

    public init(
        request: UUID, id: UUID, type: RequestType, regime: String, dueAt: Date, corrections: [Correction] = []
    ) {
        self.corrections = corrections
        self.request = request
        self.id = id
        self.type = type
        self.regime = regime
        self.dueAt = dueAt
    }
}

/// What an `http` system reported about a delivery, in its answer or its callback.
public struct SystemReport: Sendable {
    public enum Outcome: Sendable {
        /// Done: the counts it reported (and, for access, the rows it read).
        case completed(SystemReceipt, SubjectRows?)
        /// It could not do it; `reason` is a short code of the system's (never free text).
        case failed(reason: String)
    }

    /// The delivery the report is about (required in a callback).
    public var delivery: UUID?
    public var outcome: Outcome

    public init(delivery: UUID?, outcome: Outcome) {
        self.delivery = delivery
        self.outcome = outcome
    }
}

/// How an `http` system answered a delivery.
public enum DeliveryAnswer: Sendable {
    /// It did the work at once (200 with its report).
    case reported(SystemReport)
    /// It took the work on and will call back (202).
    case accepted
}

extension RequestType {
    /// The purposes a request that changes no customer data acts on, as recorded denials the
    /// consent check enforces (issue 18 item 3), sorted. Notice-only purposes have no choice to
    /// record and are left out.
    /// - opt-out of sale/sharing (CCPA §1798.120): every sale or sharing purpose;
    /// - limit use of sensitive personal information (§1798.121): every purpose some field of a
    ///   CCPA-sensitive category serves;
    /// - objection (GDPR Art. 21): every purpose not founded on a contract, a legal obligation or
    ///   vital interests (legitimate interests, public task, and consent — direct marketing);
    /// - restriction (Art. 18): every purpose not founded on a legal obligation or vital interests.
    public func affectedPurposes(_ policy: PolicySet) -> [String] {
        let candidates = policy.purposes.values.filter { $0.mechanism != .noticeOnly }
        let chosen: [Purpose]
        switch self {
        case .optOutSale:
            chosen = candidates.filter(\.saleOrSharing)
        case .limitSensitive:
            let map = policy.dataMap
            var sensitive: Set<String> = []
            for system in map.systems {
                for collection in system.collections {
                    for field in collection.fields {
                        guard let category = field.category, map.taxonomy.categories[category]?.ccpaSensitive == true
                        else { continue }
                        sensitive.formUnion(field.purposes ?? system.purposes)
                    }
                }
            }
            chosen = candidates.filter { sensitive.contains($0.key) }
        case .objection:
            chosen = candidates.filter { ![.contract, .legalObligation, .vitalInterests].contains($0.legalBasis) }
        case .restriction:
            chosen = candidates.filter { ![.legalObligation, .vitalInterests].contains($0.legalBasis) }
        case .access, .portability, .erasure, .rectification:
            chosen = []
        }
        return chosen.map(\.key).sorted()
    }
}
