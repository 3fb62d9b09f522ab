public import Foundation

/// What a person asks for (GDPR Art. 15–21, CCPA §1798.100–.121).
public enum RequestType: String, Sendable, Hashable, Codable, CaseIterable {
    /// A copy of their data and the Art. 15 information (CCPA: request to know).
    case access
    /// Their data in a machine-readable format (Art. 20).
    case portability
    /// Erase their data (Art. 17; CCPA request to delete).
    case erasure
    /// Correct inaccurate data (Art. 16; CCPA request to correct).
    case rectification
    /// Keep but do not use (Art. 18).
    case restriction
    /// Stop processing on legitimate interests or for direct marketing (Art. 21).
    case objection
    /// Opt out of sale and sharing (CCPA §1798.120).
    case optOutSale = "opt_out_sale"
    /// Limit the use of sensitive personal information (CCPA §1798.121).
    case limitSensitive = "limit_sensitive"
}

/// Where a request is in its lifecycle.
public enum RequestStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case received
    /// The requester's identity is verified (or the request needs no verification).
    case verified
    case approved
    case executing
    case completed
    /// Done, with some targets held (legal holds, retention duties) or failed after retries.
    case partiallyCompleted = "partially_completed"
    case denied
    case cancelled
    case failed

    public var isTerminal: Bool {
        switch self {
        case .completed, .partiallyCompleted, .denied, .cancelled, .failed: true
        case .received, .verified, .approved, .executing: false
        }
    }
}

/// Why a request is denied (CCPA §7102 lets the metrics break denials down by these).
public enum DenialReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The requester's identity could not be verified.
    case unverifiable
    /// Not made by the person or an authorized agent.
    case notMadeBySubject = "not_made_by_subject"
    /// The data is exempt (Art. 17(3), §1798.105(d)).
    case exempt
    /// Manifestly unfounded or excessive (Art. 12(5)).
    case manifestlyUnfounded = "manifestly_unfounded"
    case other
}

/// How the requester's identity was established.
public enum VerificationMethod: String, Sendable, Hashable, Codable, CaseIterable {
    /// The person confirmed with a single-use token the caller delivered to them.
    case token
    /// An authenticated service submitted on the person's behalf, having verified them itself.
    case preVerified = "pre_verified"
    /// An authorized agent, with the person's signed permission (CCPA §7063).
    case authorizedAgent = "authorized_agent"
    /// The request type needs no verification (CCPA opt-out and limit requests).
    case notRequired = "not_required"
}

/// A change to a request. The lifecycle is `RequestStatus.after(_:)`: pure, and tested state by event.
public enum RequestEvent: Sendable, Hashable {
    case verify(VerificationMethod)
    case approve
    case deny(DenialReason)
    case cancel
    case start
    case complete
    case completePartially
    case fail
    /// Run again a request that failed.
    case retry

    public var name: String {
        switch self {
        case .verify: "verify"
        case .approve: "approve"
        case .deny: "deny"
        case .cancel: "cancel"
        case .start: "start"
        case .complete: "complete"
        case .completePartially: "complete_partially"
        case .fail: "fail"
        case .retry: "retry"
        }
    }
}

extension RequestStatus {
    /// The status after `event`, or nil when the event does not apply in this status. A request
    /// whose type needs no verification may be approved straight from `received`; one that does
    /// must be verified first. Running work cannot be cancelled (its effects are in flight: the jobs
    /// finish or fail), and nothing leaves a terminal status except a failed request's retry.
    public func after(_ event: RequestEvent, verificationRequired: Bool) -> RequestStatus? {
        switch (self, event) {
        case (.received, .verify): .verified
        case (.received, .approve): verificationRequired ? nil : .approved
        case (.received, .deny), (.verified, .deny): .denied
        case (.received, .cancel), (.verified, .cancel), (.approved, .cancel): .cancelled
        case (.verified, .approve): .approved
        case (.approved, .start): .executing
        case (.executing, .complete): .completed
        case (.executing, .completePartially): .partiallyCompleted
        case (.executing, .fail): .failed
        case (.failed, .retry): .executing
        default: nil
        }
    }
}

/// A regime's rule for one request type: how long the controller has, whether and how far it may
/// extend, when receipt must be acknowledged, and whether identity must be verified.
public struct RegimeRule: Sendable, Hashable {
    public var response: StatutoryPeriod
    public var extensionPeriod: StatutoryPeriod?
    public var acknowledgement: StatutoryPeriod?
    public var verificationRequired: Bool
    /// A verified request is approved at once, without a privacy officer (`approval: automatic`).
    public var automaticApproval: Bool

    public init(
        response: StatutoryPeriod, extensionPeriod: StatutoryPeriod? = nil, acknowledgement: StatutoryPeriod? = nil,
        verificationRequired: Bool = true, automaticApproval: Bool = false
    ) {
        self.automaticApproval = automaticApproval
        self.response = response
        self.extensionPeriod = extensionPeriod
        self.acknowledgement = acknowledgement
        self.verificationRequired = verificationRequired
    }
}

/// A legal regime (`Policies/requests.yaml`): GDPR, CCPA, a US state's law. Its clocks run in the
/// controller's calendar.
public struct Regime: Sendable, Hashable {
    public var key: String
    public var name: String
    public var calendar: DeadlineCalendar
    /// The request types the regime grants, each with its rule.
    public var rules: [RequestType: RegimeRule]
    /// How long before its deadline a request is "due soon".
    public var warning: TimeInterval

    public init(
        key: String, name: String, calendar: DeadlineCalendar, rules: [RequestType: RegimeRule],
        warning: TimeInterval = 7 * 86_400
    ) {
        self.key = key
        self.name = name
        self.calendar = calendar
        self.rules = rules
        self.warning = warning
    }

    /// The latest day a request received on `day` can fall due, extended as `extend` extends it:
    /// how far ahead the holiday calendar has to reach.
    public func horizon(receivedOn day: CivilDate) -> CivilDate {
        var latest = day
        for rule in rules.values {
            let due = calendar.lastDay(of: rule.response, receivedOn: day)
            let end = rule.extensionPeriod.map { extra in
                rule.response.plus(extra).map { calendar.lastDay(of: $0, receivedOn: day) }
                    ?? calendar.lastDay(of: extra, receivedOn: due)
            }
            latest = max(latest, end ?? due)
        }
        return latest
    }

    /// The first year a request received on `day` can fall due in that the holiday list does not
    /// reach; nil when it does, or when the regime lists no holidays at all. Past the list, deadlines
    /// count no holidays: earlier, never later, but not the law's.
    public func uncoveredYear(receivedOn day: CivilDate) -> Int? {
        guard let lastListed = calendar.holidays.max()?.year else { return nil }
        return horizon(receivedOn: day).year > lastListed ? lastListed + 1 : nil
    }

    /// The deadlines of a request of `type` received at `receivedAt`; nil when the regime does not
    /// grant that type.
    public func deadlines(for type: RequestType, receivedAt: Date) -> RequestDeadlines? {
        guard let rule = rules[type] else { return nil }
        let receipt = CivilDate(receivedAt, in: calendar.zone)
        let last = calendar.lastDay(of: rule.response, receivedOn: receipt)
        let acknowledge = rule.acknowledgement.map { calendar.lastDay(of: $0, receivedOn: receipt) }
        return RequestDeadlines(
            receivedOn: receipt, dueOn: last, due: calendar.end(of: last), acknowledgeOn: acknowledge,
            acknowledgeBy: acknowledge.map(calendar.end(of:)), extendedOn: nil, extensionReason: nil)
    }

    /// The deadlines once extended by the rule's extension, counted from receipt when it is in the
    /// response's unit (GDPR: three months from receipt), else from the original last day. Refused
    /// when the type has no extension, it was extended already, the reason is empty, or the
    /// deadline has passed (GDPR Art. 12(3): the person is told within the first month).
    public func extend(
        _ deadlines: RequestDeadlines, type: RequestType, reason: String, now: Date
    ) throws(StewardError) -> RequestDeadlines {
        guard let rule = rules[type], let extra = rule.extensionPeriod else {
            throw StewardError(.requestExtensionNotAllowed, "\(key) grants no extension for \(type.rawValue) requests")
        }
        guard deadlines.extendedOn == nil else {
            throw StewardError(.requestAlreadyExtended, "the deadline was extended already")
        }
        guard !reason.allSatisfy(\.isWhitespace) else {
            throw StewardError(.requestExtensionReasonMissing, "an extension needs its reason", field: "reason")
        }
        guard now < deadlines.due else {
            throw StewardError(
                .requestExtensionTooLate,
                "the deadline passed at \(Timestamp.iso8601(deadlines.due)); it can no longer be extended")
        }
        let last =
            rule.response.plus(extra).map { calendar.lastDay(of: $0, receivedOn: deadlines.receivedOn) }
            ?? calendar.lastDay(of: extra, receivedOn: deadlines.dueOn)
        var extended = deadlines
        extended.dueOn = last
        extended.due = calendar.end(of: last)
        extended.extendedOn = CivilDate(now, in: calendar.zone)
        extended.extensionReason = reason
        return extended
    }

    public func standing(of deadlines: RequestDeadlines, now: Date) -> DeadlineStanding {
        .of(due: deadlines.due, now: now, warning: warning)
    }
}

/// A request's clock: when it was received (in the controller's calendar), when the answer is due,
/// when receipt must be acknowledged, and whether and why it was extended.
public struct RequestDeadlines: Sendable, Hashable, Codable {
    public var receivedOn: CivilDate
    /// The last day to answer.
    public var dueOn: CivilDate
    /// The instant that day ends in the controller's zone.
    public var due: Date
    public var acknowledgeOn: CivilDate?
    public var acknowledgeBy: Date?
    public var extendedOn: CivilDate?
    public var extensionReason: String?

    public init(
        receivedOn: CivilDate, dueOn: CivilDate, due: Date, acknowledgeOn: CivilDate? = nil, acknowledgeBy: Date? = nil,
        extendedOn: CivilDate? = nil, extensionReason: String? = nil
    ) {
        self.receivedOn = receivedOn
        self.dueOn = dueOn
        self.due = due
        self.acknowledgeOn = acknowledgeOn
        self.acknowledgeBy = acknowledgeBy
        self.extendedOn = extendedOn
        self.extensionReason = extensionReason
    }
}

/// A data subject request as Steward stores it: ids, statuses and dates — the person's identities
/// live sealed with their subject, never here.
public struct DataSubjectRequestRecord: Sendable, Hashable {
    public var id: UUID
    public var type: RequestType
    public var regime: String
    public var status: RequestStatus
    /// The Steward subject the request's identities resolve to.
    public var subjectID: UUID
    public var receivedAt: Date
    public var deadlines: RequestDeadlines
    public var verification: VerificationMethod?
    public var denial: DenialReason?
    /// An authorized agent acting for the person, as recorded at intake (a name, not an identity).
    public var agent: String?
    public var submittedBy: String
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?

    public init(
        id: UUID, type: RequestType, regime: String, status: RequestStatus, subjectID: UUID, receivedAt: Date,
        deadlines: RequestDeadlines, verification: VerificationMethod? = nil, denial: DenialReason? = nil,
        agent: String? = nil, submittedBy: String, createdAt: Date, updatedAt: Date, finishedAt: Date? = nil
    ) {
        self.id = id
        self.type = type
        self.regime = regime
        self.status = status
        self.subjectID = subjectID
        self.receivedAt = receivedAt
        self.deadlines = deadlines
        self.verification = verification
        self.denial = denial
        self.agent = agent
        self.submittedBy = submittedBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// Which requests to list: by status, type and regime, due before an instant; ordered by deadline
/// (the most urgent first), then id; `after` continues from a request of a previous page.
public struct RequestFilter: Sendable, Hashable {
    public var statuses: Set<RequestStatus>
    public var type: RequestType?
    public var regime: String?
    public var dueBefore: Date?
    public var after: UUID?
    public var limit: Int

    public init(
        statuses: Set<RequestStatus> = [], type: RequestType? = nil, regime: String? = nil, dueBefore: Date? = nil,
        after: UUID? = nil, limit: Int = 100
    ) {
        self.statuses = statuses
        self.type = type
        self.regime = regime
        self.dueBefore = dueBefore
        self.after = after
        self.limit = limit
    }
}
