public import Foundation
public import Metrics
public import StewardCore

/// How a request names a subject: by one of its identities, or by Steward's subject id.
public enum SubjectReference: Sendable, Hashable {
    case identity(NormalizedIdentity)
    case id(UUID)
}

/// Records, confirms and answers consent: the ledger's use cases. Validation is here; recording one
/// decision and confirming in `+Record`, bulk in `+Bulk`, reads in `+Queries`; the write retry policy
/// is `StewardStore.writeRetrying`, identities at rest are `IdentityVault`.
public struct ConsentService: Sendable {
    public let store: any StewardStore
    public let crypto: CryptoSuite
    public let policy: PolicySet
    public let runtime: Runtime
    /// Where `steward_consent_events_total{decision, method}` is counted, after each commit, for
    /// single, confirmed and bulk records alike; nil counts nothing (one-shot commands).
    public let metrics: (any MetricsFactory)?
    /// The resident answer set the check reads first (ADR 0013); nil reads the store every time.
    public let answers: AnswerCache?
    let audit: AuditLog
    let vault: IdentityVault

    public init(
        store: any StewardStore, crypto: CryptoSuite, policy: PolicySet, runtime: Runtime,
        metrics: (any MetricsFactory)? = nil, answers: AnswerCache? = nil
    ) {
        self.answers = answers
        self.store = store
        self.crypto = crypto
        self.policy = policy
        self.runtime = runtime
        self.metrics = metrics
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
        self.vault = IdentityVault(crypto: crypto, runtime: runtime)
    }

    /// Counts committed events by decision and method (labels from closed sets; no data values).
    func countCommitted(events: [ConsentEvent]) {
        var tally: [EventKind: Int] = [:]
        Self.tally(events, into: &tally)
        countCommitted(tally)
    }

    func countCommitted(_ tally: [EventKind: Int]) {
        guard let metrics else { return }
        for (kind, count) in tally where count > 0 {
            Counter(
                label: "steward_consent_events_total",
                dimensions: [("decision", kind.decision.rawValue), ("method", kind.method.rawValue)], factory: metrics
            ).increment(by: count)
        }
    }

    struct EventKind: Hashable {
        var decision: ConsentDecision
        var method: ConsentMethod
    }

    static func tally(_ events: [ConsentEvent], into tally: inout [EventKind: Int]) {
        for event in events { tally[EventKind(decision: event.decision, method: event.method), default: 0] += 1 }
    }

    /// One decision to record.
    public struct RecordCommand: Sendable {
        public var subject: SubjectReference
        public var purpose: String
        public var decision: ConsentDecision
        public var method: ConsentMethod
        public var notice: PolicySet.NoticeKey?
        public var source: String?
        public var proofIP: String?
        public var proofUserAgent: String?
        public var consentString: String?
        /// The request carried `Sec-GPC: 1`.
        public var globalPrivacyControl: Bool
        public var actor: String
        /// Proof of an earlier double opt-in confirmation (imports from another platform): when the
        /// person confirmed. Only with method `import` and decision `granted`.
        public var confirmedAt: Date?

        public init(
            subject: SubjectReference, purpose: String, decision: ConsentDecision, method: ConsentMethod,
            notice: PolicySet.NoticeKey? = nil, source: String? = nil, proofIP: String? = nil,
            proofUserAgent: String? = nil, consentString: String? = nil, globalPrivacyControl: Bool = false,
            actor: String, confirmedAt: Date? = nil
        ) {
            self.subject = subject
            self.purpose = purpose
            self.decision = decision
            self.method = method
            self.notice = notice
            self.source = source
            self.proofIP = proofIP
            self.proofUserAgent = proofUserAgent
            self.consentString = consentString
            self.globalPrivacyControl = globalPrivacyControl
            self.actor = actor
            self.confirmedAt = confirmedAt
        }
    }

    public struct RecordOutcome: Sendable {
        public var subjectID: UUID
        public var subjectCreated: Bool
        public var event: ConsentEvent
        public var state: ConsentState
        /// For a pending double opt-in grant: the single-use token to mail to the person. Shown once.
        public var confirmationToken: String?
        public var confirmationExpiresAt: Date?
        /// Opt-outs recorded because the request carried a Global Privacy Control signal.
        public var gpcEvents: [ConsentEvent]

        public var allEvents: [ConsentEvent] { [event] + gpcEvents }
    }

    // MARK: Validation

    /// Checks a command against the policy before any transaction starts.
    public func validate(_ command: RecordCommand) throws(StewardError) -> Purpose {
        let purpose = try policy.purpose(command.purpose)
        if purpose.mechanism == .noticeOnly {
            throw StewardError(
                .purposeNotConsentable, "the purpose is notice-only: there is no choice to record",
                field: "purpose")
        }
        if command.method == .doubleOptIn || command.method == .gpc || command.method == .dataSubjectRequest {
            throw StewardError(
                .consentMethodReserved,
                "method \(command.method.rawValue) is recorded by Steward itself (use /v1/consents/confirm, Sec-GPC or /v1/requests)",
                field: "method")
        }
        if let notice = command.notice {
            guard policy.notices[notice] != nil else {
                throw StewardError(.noticeUnknown, "is not a notice version declared in the policy", field: "notice")
            }
        } else if command.decision == .granted && purpose.legalBasis == .consent {
            throw StewardError(
                .consentNoticeRequired, "a grant of consent must name the notice id and version shown",
                field: "notice")
        }
        if let confirmedAt = command.confirmedAt {
            guard command.decision == .granted, command.method == .import else {
                throw StewardError(
                    .consentConfirmedAtNotAllowed,
                    "only a grant with method import may carry the time of an earlier confirmation",
                    field: "confirmedAt")
            }
            // A confirmation cannot lie in the future (a minute of clock skew between systems aside).
            guard confirmedAt <= runtime.now().addingTimeInterval(60) else {
                throw StewardError(.consentConfirmedAtInFuture, "lies in the future", field: "confirmedAt")
            }
        }
        if let source = command.source {
            try FreeText.check(source, field: "source", maxLength: 200, lengthCode: .consentSourceTooLong)
        }
        if let string = command.consentString {
            // TCF / GPP / US-privacy strings are ASCII (base64url and a few separators).
            if string.utf8.count > 8_192 {
                throw StewardError(.consentStringTooLong, "must be at most 8192 bytes", field: "consentString")
            }
            try FreeText.check(
                string, field: "consentString", maxLength: 8_192, kind: .identifier,
                lengthCode: .consentStringTooLong)
        }
        return purpose
    }
}
