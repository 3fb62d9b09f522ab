public import Foundation

/// What a person decided.
public enum ConsentDecision: String, Sendable, Codable, CaseIterable {
    case granted, denied, withdrawn
}

/// The state of one subject's consent for one purpose, as the hot path reports it.
public enum ConsentStatus: String, Sendable, Codable, CaseIterable {
    /// No decision is recorded.
    case none
    /// Granted, awaiting double opt-in confirmation.
    case pending
    case granted, denied, withdrawn
    /// Granted, but the purpose's validity period has run out.
    case expired
}

/// How a decision reached Steward.
public enum ConsentMethod: String, Sendable, Codable, CaseIterable {
    case webForm = "web_form"
    case api
    case `import`
    case gpc
    case doubleOptIn = "double_opt_in"
    case banner
    case email
    case phoneCall = "phone_call"
    case inPerson = "in_person"
    case tcf
    case gpp
    /// Recorded by Steward for a data subject request (opt-out, limit, objection, restriction).
    case dataSubjectRequest = "data_subject_request"
}

/// The state row kept materialised per (subject, purpose) for the hot path.
public struct ConsentState: Sendable, Hashable {
    public var subjectID: UUID
    public var purpose: String
    /// Stored status: never `.none` or `.expired` (expiry is computed at read time).
    public var status: ConsentStatus
    public var eventID: UUID
    public var decidedAt: Date
    public var expiresAt: Date?

    public init(
        subjectID: UUID, purpose: String, status: ConsentStatus, eventID: UUID, decidedAt: Date, expiresAt: Date?
    ) {
        self.subjectID = subjectID
        self.purpose = purpose
        self.status = status
        self.eventID = eventID
        self.decidedAt = decidedAt
        self.expiresAt = expiresAt
    }

    /// The status in force at `now`: a grant past its expiry reads as `.expired`.
    public func effectiveStatus(at now: Date) -> ConsentStatus {
        if status == .granted, let expiresAt, expiresAt <= now { return .expired }
        return status
    }
}

/// A subject and every current state it holds (one per purpose decided), as the check reads them:
/// one read answers every purpose of the subject.
public struct SubjectStates: Sendable, Hashable {
    public var subjectID: UUID
    public var states: [ConsentState]

    public init(subjectID: UUID, states: [ConsentState]) {
        self.subjectID = subjectID
        self.states = states
    }

    /// The state of one purpose, nil when none was decided.
    public func state(_ purpose: String) -> ConsentState? { states.first { $0.purpose == purpose } }

    /// Groups the rows of an identity → subject → state join (the state nil where the subject holds
    /// none) by blind index.
    public static func grouping(_ rows: [(index: Data, subject: UUID, state: ConsentState?)]) -> [Data: SubjectStates] {
        var found: [Data: SubjectStates] = [:]
        for row in rows {
            found[row.index, default: SubjectStates(subjectID: row.subject, states: [])].states
                .append(contentsOf: row.state.map { [$0] } ?? [])
        }
        return found
    }
}

/// One immutable ledger entry.
public struct ConsentEvent: Sendable, Hashable {
    public var id: UUID
    public var subjectID: UUID
    /// Position in the subject's history, from 1.
    public var ordinal: Int64
    public var purpose: String
    public var decision: ConsentDecision
    /// The status this event put the state in (`pending` for an unconfirmed double opt-in grant).
    public var status: ConsentStatus
    public var method: ConsentMethod
    public var noticeID: String?
    public var noticeVersion: String?
    public var source: String?
    public var actor: String
    public var recordedAt: Date
    public var expiresAt: Date?
    /// Keyed hashes of the IP address and user agent the decision came from; never the values.
    public var proofIPHash: String?
    public var proofUserAgentHash: String?
    /// A raw TCF / GPP / US-privacy string, kept verbatim as proof.
    public var consentString: String?
    /// For a confirmation, the pending event it confirms.
    public var confirms: UUID?
    /// For a grant imported with proof of an earlier double opt-in confirmation: when the person
    /// confirmed (before the record came to Steward).
    public var confirmedAt: Date?

    public init(
        id: UUID, subjectID: UUID, ordinal: Int64, purpose: String, decision: ConsentDecision, status: ConsentStatus,
        method: ConsentMethod, noticeID: String?, noticeVersion: String?, source: String?, actor: String,
        recordedAt: Date, expiresAt: Date?, proofIPHash: String?, proofUserAgentHash: String?,
        consentString: String?, confirms: UUID?, confirmedAt: Date? = nil
    ) {
        self.id = id
        self.subjectID = subjectID
        self.ordinal = ordinal
        self.purpose = purpose
        self.decision = decision
        self.status = status
        self.method = method
        self.noticeID = noticeID
        self.noticeVersion = noticeVersion
        self.source = source
        self.actor = actor
        self.recordedAt = recordedAt
        self.expiresAt = expiresAt
        self.proofIPHash = proofIPHash
        self.proofUserAgentHash = proofUserAgentHash
        self.consentString = consentString
        self.confirms = confirms
        self.confirmedAt = confirmedAt
    }
}

/// The answer to "may we use this person's data for this purpose?".
public struct ConsentCheck: Sendable, Hashable {
    public var allowed: Bool
    public var status: ConsentStatus
    public var purpose: String
    public var basis: LegalBasis
    public var recordID: UUID?
    public var decidedAt: Date?
}

/// The pure rules of the consent ledger. No I/O, no clock: `now` comes in.
public enum ConsentRules {
    /// Evaluates the hot-path question from the stored state (nil when no decision is recorded,
    /// including for an unknown subject).
    public static func check(purpose: Purpose, state: ConsentState?, now: Date) -> ConsentCheck {
        let status = state?.effectiveStatus(at: now) ?? .none
        let allowed: Bool
        switch purpose.mechanism {
        case .optIn:
            allowed = status == .granted
        case .optOut, .noticeOnly:
            allowed = status != .denied && status != .withdrawn
        }
        return ConsentCheck(
            allowed: allowed, status: status, purpose: purpose.key, basis: purpose.legalBasis,
            recordID: state?.eventID, decidedAt: state?.decidedAt)
    }

    /// The status a new decision leaves the state in, and whether it needs a confirmation token.
    ///
    /// A grant for a double opt-in purpose stays `pending` until confirmed, unless the current state
    /// is already a confirmed, unexpired grant (a renewal needs no second confirmation).
    /// A grant that carries proof of an earlier confirmation (`confirmedAt`, imports) is granted.
    public static func statusAfter(
        decision: ConsentDecision, method: ConsentMethod, purpose: Purpose, current: ConsentState?, now: Date,
        confirmedAt: Date? = nil
    ) -> (status: ConsentStatus, needsConfirmation: Bool) {
        switch decision {
        case .denied: return (.denied, false)
        case .withdrawn: return (.withdrawn, false)
        case .granted:
            guard purpose.doubleOptIn, method != .doubleOptIn, confirmedAt == nil else { return (.granted, false) }
            if current?.effectiveStatus(at: now) == .granted { return (.granted, false) }
            return (.pending, true)
        }
    }

    /// The expiry of a grant decided at `decidedAt`, from the purpose's validity.
    public static func expiry(of purpose: Purpose, status: ConsentStatus, decidedAt: Date) -> Date? {
        guard status == .granted || status == .pending, let validity = purpose.validity else { return nil }
        return validity.added(to: decidedAt)
    }

    /// Which decision a Global Privacy Control signal records for a sale/sharing purpose:
    /// `withdrawn` where a grant is in force, `denied` otherwise; nil where the person already opted out.
    public static func gpcDecision(current: ConsentState?, now: Date) -> ConsentDecision? {
        switch current?.effectiveStatus(at: now) ?? .none {
        case .denied, .withdrawn: return nil
        case .granted, .pending: return .withdrawn
        case .none, .expired: return .denied
        }
    }
}
