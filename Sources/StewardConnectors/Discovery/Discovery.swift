public import StewardCore

/// What sampling one column found: how many values were read and how many matched each detector.
/// Counts only — the values themselves are dropped as they are read.
public struct ColumnProfile: Sendable, Hashable {
    public var table: String
    public var column: String
    public var sampled = 0
    public var matches: [Detector: Int] = [:]

    public init(table: String, column: String) {
        self.table = table
        self.column = column
    }

    public mutating func observe(_ value: String?) {
        guard let value, !value.isEmpty else { return }
        sampled += 1
        for detector in Detector.matches(value) { matches[detector, default: 0] += 1 }
    }

    public func rate(_ detector: Detector) -> Double {
        sampled == 0 ? 0 : Double(matches[detector] ?? 0) / Double(sampled)
    }
}

/// A proposed category for a column, with how sure discovery is and why.
public struct Proposal: Sendable, Hashable {
    public var table: String
    public var column: String
    /// nil: nothing personal was found.
    public var category: String?
    /// 0…1. At `Discovery.threshold` or above it is a proposal; below, a hint to review.
    public var confidence: Double
    public var reason: String
    public var sampled: Int
    /// The identity kind, when the category identifies a person on its own.
    public var identity: IdentityKind?

    public var isProposed: Bool { category != nil && confidence >= Discovery.threshold }
}

/// Proposes categories from a column's name and its sampled values.
public enum Discovery {
    /// Confidence from which a category is proposed; below it, it is listed for review.
    public static let threshold = 0.6
    /// Fewer sampled values than this cap the confidence below the threshold.
    public static let minimumSample = 10

    /// Category hints from column names: phrases of name tokens (`first_name`, `firstName` and
    /// `firstname` all tokenise to match).
    static let hints: [(category: String, phrases: [[String]])] = [
        ("user.contact.email", [["email"], ["e", "mail"], ["mail"], ["email", "address"]]),
        (
            "user.contact.phone_number",
            [["phone"], ["mobile"], ["tel"], ["telephone"], ["cell"], ["msisdn"], ["fax"], ["phone", "number"]]
        ),
        (
            "user.device.ip_address",
            [["ip"], ["ip", "address"], ["ipaddress"], ["ipv4"], ["ipv6"], ["remote", "addr"]]
        ),
        (
            "user.payment.card_number",
            [["card", "number"], ["cc", "number"], ["pan"], ["card", "no"], ["credit", "card"], ["cardnumber"]]
        ),
        ("user.financial.bank_account", [["iban"], ["bank", "account"], ["account", "number"], ["bban"]]),
        (
            "user.government_id.national_identification_number",
            [["ssn"], ["social", "security"], ["national", "id"], ["nino"], ["ni", "number"], ["tax", "id"]]
        ),
        ("user.government_id.passport_number", [["passport"]]),
        ("user.contact.address.postal_code", [["zip"], ["zipcode"], ["postcode"], ["postal", "code"], ["plz"]]),
        (
            "user.contact.address.street",
            [["street"], ["address"], ["address", "line"], ["addr"], ["address1"], ["address2"], ["line1"]]
        ),
        ("user.contact.address.city", [["city"], ["town"], ["locality"]]),
        ("user.contact.address.country", [["country"], ["country", "code"]]),
        ("user.name.first", [["first", "name"], ["firstname"], ["given", "name"], ["forename"]]),
        ("user.name.last", [["last", "name"], ["lastname"], ["surname"], ["family", "name"]]),
        ("user.name", [["full", "name"], ["fullname"], ["name"], ["contact", "name"], ["customer", "name"]]),
        (
            "user.demographic.date_of_birth",
            [["dob"], ["birth"], ["birthday"], ["birthdate"], ["born"], ["date", "of", "birth"]]
        ),
        ("user.demographic.gender", [["gender"], ["sex"]]),
        (
            "user.account.username",
            [["username"], ["user", "name"], ["login"], ["handle"], ["nickname"], ["screen", "name"]]
        ),
        ("user.location.precise", [["lat"], ["latitude"], ["lng"], ["lon"], ["longitude"], ["geo"], ["coordinates"]]),
    ]

    /// Whether two categories are the same or one contains the other (`user.contact.address` and
    /// `user.contact.address.street`): a proposal that refines the map's category agrees with it.
    public static func agree(_ one: String?, _ other: String?) -> Bool {
        guard let one, let other else { return false }
        return one == other || one.hasPrefix(other + ".") || other.hasPrefix(one + ".")
    }

    /// Lower-case tokens of a column name: split at non-letters and at lower-to-upper case changes.
    static func tokens(_ name: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        var previousLower = false
        for character in name {
            if !(character.isLetter || character.isNumber) {
                if !current.isEmpty { tokens.append(current) }
                current = ""
                previousLower = false
                continue
            }
            if character.isUppercase && previousLower, !current.isEmpty {
                tokens.append(current)
                current = ""
            }
            current.append(Character(character.lowercased()))
            previousLower = character.isLowercase
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    /// The categories a column's name suggests.
    static func hinted(_ name: String) -> Set<String> {
        let words = tokens(name)
        var found: Set<String> = []
        for (category, phrases) in hints {
            for phrase in phrases where phrase.count <= words.count {
                if (0...(words.count - phrase.count)).contains(where: {
                    Array(words[$0..<($0 + phrase.count)]) == phrase
                }) {
                    found.insert(category)
                }
            }
        }
        // "email_address", "ip_address": the address is not a street.
        if found.contains("user.contact.email") || found.contains("user.device.ip_address") {
            found.remove("user.contact.address.street")
        }
        // A first or last name, or a user name, is more precise than a name.
        if found.contains("user.name.first") || found.contains("user.name.last")
            || found.contains("user.account.username")
        {
            found.remove("user.name")
        }
        return found
    }

    /// Rules in the order they are tried: value shapes that stand on their own first, then shapes
    /// that need the column's name to say what they are.
    struct Rule {
        var category: String
        var detector: Detector
        /// Whether the column's name must suggest the category.
        var needsHint: Bool
        /// The share of sampled values that must match.
        var minimumRate: Double
        var identity: IdentityKind? = nil
        var what: String
    }

    static let rules: [Rule] = [
        Rule(
            category: "user.contact.email", detector: .email, needsHint: false, minimumRate: 0.8, identity: .email,
            what: "email addresses"),
        Rule(
            category: "user.payment.card_number", detector: .paymentCard, needsHint: false, minimumRate: 0.8,
            what: "card numbers (Luhn and issuer prefix)"),
        Rule(
            category: "user.financial.bank_account", detector: .iban, needsHint: false, minimumRate: 0.8,
            what: "IBANs (mod 97)"),
        Rule(
            category: "user.government_id.national_identification_number", detector: .ssn, needsHint: false,
            minimumRate: 0.8, what: "US social security numbers in issued ranges"),
        Rule(
            category: "user.government_id.national_identification_number", detector: .nino, needsHint: false,
            minimumRate: 0.8, what: "UK national insurance numbers"),
        Rule(
            category: "user.device.ip_address", detector: .ipAddress, needsHint: false, minimumRate: 0.8,
            what: "IP addresses"),
        Rule(
            category: "user.contact.phone_number", detector: .phone, needsHint: false, minimumRate: 0.8,
            identity: .phone, what: "phone numbers"),
        Rule(
            category: "user.location.precise", detector: .coordinates, needsHint: false, minimumRate: 0.8,
            what: "latitude/longitude pairs"),
        Rule(
            category: "user.contact.address.street", detector: .streetAddress, needsHint: false, minimumRate: 0.7,
            what: "street addresses"),
        Rule(category: "user.name", detector: .fullName, needsHint: false, minimumRate: 0.7, what: "full names"),
        Rule(
            category: "user.contact.phone_number", detector: .digits, needsHint: true, minimumRate: 0.8,
            identity: .phone, what: "digit strings of phone length"),
        Rule(
            category: "user.government_id.national_identification_number", detector: .ssnDigits, needsHint: true,
            minimumRate: 0.8, what: "nine-digit numbers in SSN ranges"),
        Rule(
            category: "user.demographic.date_of_birth", detector: .birthDate, needsHint: true, minimumRate: 0.8,
            what: "dates of birth"),
        Rule(
            category: "user.demographic.date_of_birth", detector: .birthYear, needsHint: true, minimumRate: 0.8,
            what: "years of birth"),
        Rule(
            category: "user.account.username", detector: .handle, needsHint: true, minimumRate: 0.8,
            what: "login handles"),
        Rule(
            category: "user.contact.address.postal_code", detector: .postcode, needsHint: true, minimumRate: 0.8,
            what: "postcodes"),
        Rule(category: "user.name.first", detector: .properNoun, needsHint: true, minimumRate: 0.8, what: "names"),
        Rule(category: "user.name.last", detector: .properNoun, needsHint: true, minimumRate: 0.8, what: "names"),
        Rule(category: "user.name", detector: .properNoun, needsHint: true, minimumRate: 0.8, what: "names"),
        Rule(
            category: "user.contact.address.city", detector: .properNoun, needsHint: true, minimumRate: 0.8,
            what: "place names"),
        Rule(
            category: "user.contact.address.country", detector: .country, needsHint: true, minimumRate: 0.8,
            what: "countries"),
        Rule(
            category: "user.demographic.gender", detector: .gender, needsHint: true, minimumRate: 0.8, what: "genders"),
        Rule(
            category: "user.location.precise", detector: .coordinate, needsHint: true, minimumRate: 0.8,
            what: "coordinates"),
    ]

    /// The proposal for one sampled column.
    public static func propose(_ profile: ColumnProfile) -> Proposal {
        let hinted = hinted(profile.column)
        func proposal(_ category: String?, _ confidence: Double, _ reason: String, identity: IdentityKind? = nil)
            -> Proposal
        {
            var confidence = (confidence * 100).rounded() / 100
            var reason = reason
            if category != nil, profile.sampled < minimumSample, confidence >= threshold {
                confidence = threshold - 0.01
                reason += "; only \(profile.sampled) values sampled"
            }
            return Proposal(
                table: profile.table, column: profile.column, category: category, confidence: confidence,
                reason: reason, sampled: profile.sampled, identity: identity)
        }
        func percent(_ rate: Double) -> String { "\(Int((rate * 100).rounded()))%" }
        for rule in rules {
            let rate = profile.rate(rule.detector)
            let hint = hinted.contains(rule.category)
            guard rate >= rule.minimumRate, profile.sampled > 0, !rule.needsHint || hint else { continue }
            // Names and places need the dictionary's support when the name says only "name".
            if rule.detector == .properNoun, rule.category == "user.name",
                profile.rate(.fullName) + profile.rate(.firstName) + profile.rate(.lastName) < 0.3
            {
                continue
            }
            let base = rule.needsHint ? 0.55 + 0.35 * rate : 0.5 + 0.4 * rate
            let confidence = min(0.99, base + (hint ? 0.08 : 0))
            return proposal(
                rule.category, confidence,
                "\(percent(rate)) of \(profile.sampled) sampled values are \(rule.what)"
                    + (hint ? "; so is the column's name" : ""),
                identity: rule.identity)
        }
        let freeText = profile.rate(.freeText)
        let personal = profile.sampled == 0 ? 0 : Double(profile.matches[.personalText] ?? 0) / Double(profile.sampled)
        // Free text is personal when some of it is: a few notes naming someone are enough.
        let personalCount = profile.matches[.personalText] ?? 0
        if freeText >= 0.6, personalCount >= 3, personal >= 0.01 {
            return proposal(
                "user.content.private", min(0.95, 0.62 + min(1, personal * 4) * 0.33),
                "free text; \(percent(personal)) of \(profile.sampled) sampled values hold an email address, phone number or name"
            )
        }
        if let category = hinted.sorted().first {
            return proposal(
                category, 0.45,
                profile.sampled == 0
                    ? "the column's name suggests it; no values to sample"
                    : "the column's name suggests it, but its \(profile.sampled) sampled values do not look like it")
        }
        return proposal(nil, 0, "nothing personal found in \(profile.sampled) sampled values")
    }
}
