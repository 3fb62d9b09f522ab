/// How sensitive a category of data is. Ordered: `public < internal < personal < sensitive < secret`.
/// A field at `personal` or above holds personal data.
public enum Sensitivity: String, Sendable, Hashable, CaseIterable, Comparable {
    case `public`, `internal`, personal, sensitive, secret

    var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: Sensitivity, rhs: Sensitivity) -> Bool { lhs.rank < rhs.rank }

    /// Data of this sensitivity is about a person.
    public var isPersonal: Bool { self >= .personal }
}

/// What happens to a field when its person is erased.
public enum ErasureStrategy: String, Sendable, Hashable, CaseIterable {
    /// The row goes (the person's row in the collection, children first).
    case deleteRow = "delete_row"
    /// The value becomes NULL.
    case null
    /// The value is replaced by a fixed mask of its type.
    case mask
    /// The value is replaced by a keyed hash (stays joinable, no longer readable).
    case hash
    /// The value stays, for the reason given (a legal retention duty).
    case keep
}

/// One data category of the taxonomy, with what it inherited from its ancestors resolved.
public struct DataCategory: Sendable, Hashable {
    /// Dotted key, fideslang-compatible (`user.contact.email`).
    public var key: String
    public var description: String
    public var sensitivity: Sensitivity
    /// A special category of GDPR Art. 9.
    public var gdprSpecial: Bool
    /// Criminal convictions and offences, GDPR Art. 10.
    public var gdprCriminal: Bool
    /// Sensitive personal information under the CCPA.
    public var ccpaSensitive: Bool
    /// The default erasure strategy of a field of this category (nil: none, the field must say).
    public var erasure: ErasureStrategy?
    /// Why data of this category is kept on erasure (with `erasure: keep`).
    public var keepReason: String?

    public init(
        key: String, description: String, sensitivity: Sensitivity, gdprSpecial: Bool = false,
        gdprCriminal: Bool = false, ccpaSensitive: Bool = false, erasure: ErasureStrategy? = nil,
        keepReason: String? = nil
    ) {
        self.key = key
        self.description = description
        self.sensitivity = sensitivity
        self.gdprSpecial = gdprSpecial
        self.gdprCriminal = gdprCriminal
        self.ccpaSensitive = ccpaSensitive
        self.erasure = erasure
        self.keepReason = keepReason
    }

    /// The parent's key (`user.contact` for `user.contact.email`), nil for a root.
    public var parentKey: String? {
        guard let dot = key.lastIndex(of: ".") else { return nil }
        return String(key[..<dot])
    }
}

/// The taxonomy: categories by key, each resolved (children inherit unless they override).
public struct Taxonomy: Sendable, Hashable {
    public var categories: [String: DataCategory]
    /// Keys in declaration order (parents before children).
    public var order: [String]

    public init(categories: [DataCategory]) {
        self.categories = Dictionary(categories.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.order = categories.map(\.key)
    }

    public subscript(key: String) -> DataCategory? { categories[key] }
}

/// Where a system's connection comes from: never the secret itself in a policy file.
public enum ConnectionReference: Sendable, Hashable {
    /// An environment variable holding the URL or path.
    case environment(String)
    /// A file holding the URL, or (SQLite) the database file itself, relative to the policy directory.
    case file(String)
}

/// A system of the customer store (a CRM, billing, a support desk) as the data map declares it.
public struct DataSystem: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable { case sqlite, postgres, http }

    public var key: String
    public var name: String
    public var kind: Kind
    public var connection: ConnectionReference
    /// An `http` system's signing secret (the HMAC-SHA-256 key shared with the system): where it
    /// is, never its value. Required for `http`, refused for the others.
    public var secret: ConnectionReference?
    /// How long an `http` system may take to call back after taking a delivery on (`202`) before its
    /// task needs attention (`callback_within`; nil: `defaultCallbackWithin`).
    public var callbackWithin: Double?
    public var owner: String?
    public var purposes: [String]
    public var collections: [DataCollection]
    /// What the records of processing (GDPR Art. 30) need to know about the system.
    public var processing: Processing

    /// Art. 30 facts of a system: whose data it holds, where, who operates it, who receives it,
    /// and how long it is kept.
    public struct Processing: Sendable, Hashable {
        /// Categories of data subjects: customers, newsletter subscribers, employees…
        public var dataSubjects: [String]
        /// Where the data is stored or processed: an ISO 3166 alpha-2 country code.
        public var location: String?
        /// The processor operating the system for the controller (a SaaS vendor), if any.
        public var processor: String?
        /// Other recipients of the data (a carrier, the tax authority…).
        public var recipients: [String]
        /// The safeguard of a transfer outside the EEA: adequacy decision, SCCs, BCRs (Art. 46).
        public var transferSafeguard: String?
        /// The envisaged time limit for erasure (Art. 30(1)(f)).
        public var retention: String?

        public init(
            dataSubjects: [String] = [], location: String? = nil, processor: String? = nil, recipients: [String] = [],
            transferSafeguard: String? = nil, retention: String? = nil
        ) {
            self.dataSubjects = dataSubjects
            self.location = location
            self.processor = processor
            self.recipients = recipients
            self.transferSafeguard = transferSafeguard
            self.retention = retention
        }

        /// EEA member states: a system stored elsewhere makes a transfer (GDPR Chapter V).
        public static let eea: Set<String> = [
            "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
            "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
        ]

        /// Whether the data leaves the EEA.
        public var isTransfer: Bool { location.map { !Self.eea.contains($0) } ?? false }
    }

    public init(
        key: String, name: String, kind: Kind, connection: ConnectionReference, owner: String?, purposes: [String],
        collections: [DataCollection], processing: Processing = Processing(), secret: ConnectionReference? = nil,
        callbackWithin: Double? = nil
    ) {
        self.callbackWithin = callbackWithin
        self.key = key
        self.name = name
        self.kind = kind
        self.connection = connection
        self.secret = secret
        self.owner = owner
        self.purposes = purposes
        self.collections = collections
        self.processing = processing
    }

    public func collection(_ name: String) -> DataCollection? { collections.first { $0.name == name } }

    /// Seven days: a week of a one-month clock, so an operator still has time to chase the system.
    public static let defaultCallbackWithin: Double = 7 * 86_400

    /// `7 days`, `48 hours` (singular too): 1 hour to 90 days, in seconds.
    public static func callbackWindow(parsing text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let amount = Int(parts[0]), amount > 0 else { return nil }
        let seconds: Int
        switch parts[1] {
        case "hour", "hours": seconds = amount * 3_600
        case "day", "days": seconds = amount * 86_400
        default: return nil
        }
        return seconds <= 90 * 86_400 ? Double(seconds) : nil
    }
}

/// A table (or an API's resource) of a system.
public struct DataCollection: Sendable, Hashable {
    public var name: String
    public var primaryKey: [String]
    public var fields: [DataField]

    public init(name: String, primaryKey: [String], fields: [DataField]) {
        self.name = name
        self.primaryKey = primaryKey
        self.fields = fields
    }

    public func field(_ name: String) -> DataField? { fields.first { $0.name == name } }
}

/// A column: its category, the identity it holds, what it references and its erasure strategy.
public struct DataField: Sendable, Hashable {
    public var name: String
    /// The data category (nil for a pure link: a primary or foreign key with no category of its own).
    public var category: String?
    /// The identity kind this field holds, when it identifies a person (email, phone, external_id…).
    public var identity: IdentityKind?
    /// The field this one references (`collection.field`, or `system.collection.field` in another system).
    public var references: FieldReference?
    /// The field's own erasure strategy, overriding its category's.
    public var erasure: ErasureStrategy?
    /// Why the field is kept (`erasure: keep`).
    public var keepReason: String?
    /// The purposes this field serves, when narrower than its system's (nil: the system's).
    public var purposes: [String]?
    /// How the system protects the value at rest (nil: not declared, i.e. plain).
    public var protection: FieldProtection?
    /// How an identity field's values are compared with the subject's (nil: the kind's default).
    public var match: IdentityMatch?

    public init(
        name: String, category: String? = nil, identity: IdentityKind? = nil, references: FieldReference? = nil,
        erasure: ErasureStrategy? = nil, keepReason: String? = nil, purposes: [String]? = nil,
        protection: FieldProtection? = nil, match: IdentityMatch? = nil
    ) {
        self.match = match
        self.name = name
        self.category = category
        self.identity = identity
        self.references = references
        self.erasure = erasure
        self.keepReason = keepReason
        self.purposes = purposes
        self.protection = protection
    }
}

/// How an identity field's values are compared with the subject's identities when a request locates
/// rows. Steward normalises an email at intake (lower-cased), so a system holding `Ada@Example.com`
/// holds the same person as `ada@example.com`: email fields compare case-insensitively unless the map
/// says `match: exact` (a column whose values are stored normalised, so that its index is used).
public enum IdentityMatch: String, Sendable, Hashable, CaseIterable {
    case exact
    case caseInsensitive = "case-insensitive"
}

extension DataField {
    /// Whether rows are located by this identity field with case folded (`match`, or the kind's default).
    public var matchesFoldingCase: Bool {
        guard let identity else { return false }
        return (match ?? (identity == .email ? .caseInsensitive : .exact)) == .caseInsensitive
    }
}

/// How a system protects a field's value at rest.
public enum FieldProtection: String, Sendable, Hashable, CaseIterable {
    /// Encrypted by the system (column or application-level encryption).
    case encrypted
    /// Stored masked (only part of the value, e.g. a card's last four digits).
    case masked
    /// Replaced by a token whose value lives elsewhere.
    case tokenized
}

/// A reference to a field: in the same system unless `system` is given.
public struct FieldReference: Sendable, Hashable, CustomStringConvertible {
    public var system: String?
    public var collection: String
    public var field: String

    public init(system: String?, collection: String, field: String) {
        self.system = system
        self.collection = collection
        self.field = field
    }

    /// Parses `collection.field` or `system.collection.field`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 2: self.init(system: nil, collection: parts[0], field: parts[1])
        case 3: self.init(system: parts[0], collection: parts[1], field: parts[2])
        default: return nil
        }
    }

    public var description: String { ([system].compactMap { $0 } + [collection, field]).joined(separator: ".") }
}

/// The data map: the taxonomy and every system of the customer store.
public struct DataMap: Sendable, Hashable {
    public var taxonomy: Taxonomy
    public var systems: [DataSystem]
    /// `organisation.yaml`: the controller, its DPO and representative, its security measures.
    public var organisation: Organisation?

    public init(taxonomy: Taxonomy, systems: [DataSystem], organisation: Organisation? = nil) {
        self.taxonomy = taxonomy
        self.systems = systems
        self.organisation = organisation
    }

    public static let empty = DataMap(taxonomy: Taxonomy(categories: []), systems: [])

    public func system(_ key: String) -> DataSystem? { systems.first { $0.key == key } }

    /// A field's effective erasure strategy: its own, else its category's (inherited).
    public func erasure(of field: DataField) -> ErasureStrategy? {
        field.erasure ?? field.category.flatMap { taxonomy[$0]?.erasure }
    }

    /// A finding of the minimisation report (`steward policy check --strict`): personal data kept
    /// without a purpose, systems nobody owns, purposes nothing uses, sensitive values stored plain.
    public struct Finding: Sendable, Hashable, CustomStringConvertible {
        public enum Kind: String, Sendable, Hashable, CaseIterable {
            case personalFieldWithoutPurpose = "personal_field_without_purpose"
            case systemWithoutOwner = "system_without_owner"
            case purposeUnused = "purpose_unused"
            case sensitiveFieldUnprotected = "sensitive_field_unprotected"
            case transferWithoutSafeguard = "transfer_without_safeguard"
        }
        public var kind: Kind
        /// `system`, `system.collection.field` or a purpose key.
        public var place: String
        public var detail: String
        public var description: String { "\(kind.rawValue)  \(place): \(detail)" }
    }

    /// The minimisation findings of the map against the declared `purposes`, in a stable order.
    public func minimisation(purposes: [String]) -> [Finding] {
        var findings: [Finding] = []
        var used: Set<String> = []
        for system in systems.sorted(by: { $0.key < $1.key }) {
            if system.owner == nil {
                findings.append(
                    Finding(
                        kind: .systemWithoutOwner, place: system.key,
                        detail: "no owner: name the team answerable for it (owner:)"))
            }
            used.formUnion(system.purposes)
            if system.processing.isTransfer, system.processing.transferSafeguard == nil {
                findings.append(
                    Finding(
                        kind: .transferWithoutSafeguard, place: system.key,
                        detail:
                            "stored in \(system.processing.location ?? "?"), outside the EEA, with no safeguard declared (transfer_safeguard: adequacy decision, SCCs, BCRs)"
                    ))
            }
            for collection in system.collections {
                for field in collection.fields {
                    let place = "\(system.key).\(collection.name).\(field.name)"
                    let served = field.purposes ?? system.purposes
                    used.formUnion(served)
                    if isPersonal(field) && served.isEmpty {
                        findings.append(
                            Finding(
                                kind: .personalFieldWithoutPurpose, place: place,
                                detail:
                                    "personal data that no purpose uses: give its system or the field purposes, or stop keeping it"
                            ))
                    }
                    if let category = field.category.flatMap({ taxonomy[$0] }), category.sensitivity >= .sensitive,
                        field.protection == nil
                    {
                        findings.append(
                            Finding(
                                kind: .sensitiveFieldUnprotected, place: place,
                                detail:
                                    "\(category.sensitivity.rawValue) data (\(category.key)) stored neither encrypted, masked nor tokenized (protection:)"
                            ))
                    }
                }
            }
        }
        for purpose in purposes.sorted() where !used.contains(purpose) {
            findings.append(
                Finding(
                    kind: .purposeUnused, place: purpose,
                    detail: "no system declares this purpose: is data collected for it anywhere?"))
        }
        return findings
    }

    /// Whether a field holds personal data (its category is personal or above, or it identifies a person).
    public func isPersonal(_ field: DataField) -> Bool {
        field.identity != nil || (field.category.flatMap { taxonomy[$0]?.sensitivity.isPersonal } ?? false)
    }
}

/// A SQL identifier from policy: validated (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes — PostgreSQL's
/// limit), then always quoted when it meets SQL. Values never go through it: they are bound.
public struct SQLIdentifier: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init?(_ name: String) {
        guard Self.isValid(name) else { return nil }
        self.name = name
    }

    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
        let isStart = (first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A) || first == 0x5F
        return isStart
            && name.utf8.allSatisfy {
                ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F
            }
    }

    /// The identifier in double quotes, as both SQLite and PostgreSQL read it (no quote can be inside).
    public var quoted: String { "\"\(name)\"" }
    public var description: String { quoted }
}

/// The controller's side of the records of processing (`organisation.yaml`): who is responsible,
/// how to reach its data protection officer and EU representative, and its security measures.
public struct Organisation: Sendable, Hashable {
    public struct Party: Sendable, Hashable, Codable {
        public var name: String
        public var contact: String
        public var address: String?

        public init(name: String, contact: String, address: String? = nil) {
            self.name = name
            self.contact = contact
            self.address = address
        }
    }

    public var controller: Party
    public var dpo: Party?
    public var representative: Party?
    /// The controller's country (ISO 3166 alpha-2): decides which systems make transfers.
    public var country: String?
    /// General description of technical and organisational measures (Art. 30(1)(g), Art. 32).
    public var securityMeasures: [String]

    public init(
        controller: Party, dpo: Party? = nil, representative: Party? = nil, country: String? = nil,
        securityMeasures: [String] = []
    ) {
        self.controller = controller
        self.dpo = dpo
        self.representative = representative
        self.country = country
        self.securityMeasures = securityMeasures
    }
}
