public import Foundation

/// Why personal data may be processed (GDPR Art. 6).
public enum LegalBasis: String, Sendable, Codable, CaseIterable {
    case consent
    case contract
    case legalObligation = "legal_obligation"
    case vitalInterests = "vital_interests"
    case publicTask = "public_task"
    case legitimateInterests = "legitimate_interests"
}

/// How a person's choice is captured for a purpose.
public enum ConsentMechanism: String, Sendable, Codable, CaseIterable {
    /// Not allowed until the person says yes.
    case optIn = "opt_in"
    /// Allowed until the person says no (CCPA sale/sharing, legitimate-interest marketing).
    case optOut = "opt_out"
    /// No choice to record: the person is informed only.
    case noticeOnly = "notice_only"
}

/// A calendar amount such as `13 months`, used for consent validity.
public struct CalendarPeriod: Sendable, Hashable, CustomStringConvertible {
    public enum Unit: String, Sendable, CaseIterable { case day, week, month, year }
    public let amount: Int
    public let unit: Unit

    public init(amount: Int, unit: Unit) {
        self.amount = amount
        self.unit = unit
    }

    /// Parses `N unit` (`13 months`, `1 year`, `30 days`, `6 weeks`).
    public init?(parsing text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let amount = Int(parts[0]), amount > 0, amount <= 100_000 else { return nil }
        var unitText = parts[1].lowercased()
        if unitText.hasSuffix("s") { unitText.removeLast() }
        guard let unit = Unit(rawValue: unitText) else { return nil }
        self.init(amount: amount, unit: unit)
    }

    public var description: String { "\(amount) \(unit.rawValue)\(amount == 1 ? "" : "s")" }

    /// The instant this period after `date`, in the proleptic Gregorian calendar, UTC.
    /// Built once: creating a Calendar costs tens of microseconds on Linux.
    private static let utcGregorian: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    public func added(to date: Date) -> Date {
        let calendar = Self.utcGregorian
        var components = DateComponents()
        switch unit {
        case .day: components.day = amount
        case .week: components.day = amount * 7
        case .month: components.month = amount
        case .year: components.year = amount
        }
        return calendar.date(byAdding: components, to: date) ?? date
    }
}

/// A reason for using personal data, declared in `Policies/purposes.yaml`.
public struct Purpose: Sendable, Hashable {
    public var key: String
    public var description: String
    public var legalBasis: LegalBasis
    public var mechanism: ConsentMechanism
    public var doubleOptIn: Bool
    public var validity: CalendarPeriod?
    /// CCPA "sale or sharing": a `Sec-GPC: 1` signal opts the person out of it.
    public var saleOrSharing: Bool
    public var jurisdictions: [String]

    public init(
        key: String, description: String, legalBasis: LegalBasis, mechanism: ConsentMechanism,
        doubleOptIn: Bool = false, validity: CalendarPeriod? = nil, saleOrSharing: Bool = false,
        jurisdictions: [String] = []
    ) {
        self.key = key
        self.description = description
        self.legalBasis = legalBasis
        self.mechanism = mechanism
        self.doubleOptIn = doubleOptIn
        self.validity = validity
        self.saleOrSharing = saleOrSharing
        self.jurisdictions = jurisdictions
    }
}

/// A versioned privacy notice, identified by id and version, pinned by the SHA-256 of the text shown.
public struct Notice: Sendable, Hashable {
    public var id: String
    public var version: String
    public var language: String
    public var url: String
    public var sha256: String

    public init(id: String, version: String, language: String, url: String, sha256: String) {
        self.id = id
        self.version = version
        self.language = language
        self.url = url
        self.sha256 = sha256
    }
}

/// The validated policy a running service enforces.
public struct PolicySet: Sendable {
    public let purposes: [String: Purpose]
    public let notices: [NoticeKey: Notice]
    /// SHA-256 (hex) of the policy files as loaded, recorded in the audit log on change.
    public let digest: String
    /// How long a double opt-in confirmation token stays valid.
    public let confirmationTokenLifetime: CalendarPeriod
    /// The data map: taxonomy and the systems of the customer store (empty without `taxonomy.yaml`).
    public var dataMap: DataMap = .empty
    /// The legal regimes of data subject requests (`requests.yaml`; none without it).
    public var regimes: [Regime] = []

    public struct NoticeKey: Sendable, Hashable {
        public let id: String
        public let version: String
        public init(id: String, version: String) {
            self.id = id
            self.version = version
        }
    }

    public init(
        purposes: [Purpose], notices: [Notice], digest: String,
        confirmationTokenLifetime: CalendarPeriod = .init(amount: 7, unit: .day)
    ) {
        self.purposes = Dictionary(purposes.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.notices = Dictionary(
            notices.map { (NoticeKey(id: $0.id, version: $0.version), $0) }, uniquingKeysWith: { first, _ in first })
        self.digest = digest
        self.confirmationTokenLifetime = confirmationTokenLifetime
    }

    public var sortedPurposes: [Purpose] { purposes.values.sorted { $0.key < $1.key } }
    public var sortedNotices: [Notice] {
        notices.values.sorted { ($0.id, $0.version) < ($1.id, $1.version) }
    }

    public func purpose(_ key: String, field: String = "purpose") throws(StewardError) -> Purpose {
        guard let purpose = purposes[key] else {
            throw StewardError(.purposeUnknown, "is not a purpose declared in the policy", field: field)
        }
        return purpose
    }
}
