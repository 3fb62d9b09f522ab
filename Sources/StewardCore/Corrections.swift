public import Foundation

/// A corrected value a person asks for (GDPR Art. 16, CCPA §1798.106): for every mapped field of a
/// data category (`user.contact.address.city`, the way a person says it), or for one field
/// (`crm.customers.city`, the way a privacy officer may narrow it). The value is personal data: it
/// is sealed while the request is open and deleted when it finishes; errors name the correction by
/// its position, never its value.
public struct Correction: Sendable, Hashable, Codable {
    public var category: String?
    /// `system.collection.field`.
    public var field: String?
    public var value: String

    public init(category: String? = nil, field: String? = nil, value: String) {
        self.category = category
        self.field = field
        self.value = value
    }

    /// At most this many corrections in one request.
    public static let limit = 50
    /// At most this many characters (Unicode code points) in a corrected value.
    public static let maxLength = 4096
}

/// An identity given as the SHA-256 of its normalised value (OpenDSR's `identity_format: sha256`;
/// lower-case hex): the caller never had, or did not send, the value. Steward cannot open it, so it
/// never resolves to a subject; the connectors recognise it by hashing each identity column's values.
public struct HashedIdentity: Sendable, Hashable, Codable {
    public var kind: IdentityKind
    public var sha256: String

    public init(kind: IdentityKind, sha256: String) {
        self.kind = kind
        self.sha256 = sha256
    }

    /// The kinds a hash may be given for: the normalised forms are canonical (an email lower-cased,
    /// a phone number in E.164).
    public static let kinds: [IdentityKind] = [.email, .phone]
}

/// What a request holds of the person beyond its ids, sealed while it is open and deleted when it
/// finishes: a rectification's corrected values, and identities given as SHA-256.
public struct RequestDetails: Sendable, Hashable, Codable {
    public var corrections: [Correction]
    public var hashedIdentities: [HashedIdentity]

    public init(corrections: [Correction] = [], hashedIdentities: [HashedIdentity] = []) {
        self.corrections = corrections
        self.hashedIdentities = hashedIdentities
    }

    public var isEmpty: Bool { corrections.isEmpty && hashedIdentities.isEmpty }
}

/// A field a correction sets, and which correction.
public struct FieldCorrection: Sendable, Hashable {
    public var field: String
    /// The index of the correction in the request.
    public var correction: Int

    public init(field: String, correction: Int) {
        self.field = field
        self.correction = correction
    }
}

extension DataMap {
    /// Why a mapped field cannot be corrected in place, or nil when it can. Only personal fields are;
    /// never a key or a link (a primary key, a reference, or a field another references: changing it
    /// would cut rows from their parents), nor a field kept as recorded (`erasure: keep`: a ledger
    /// entry or invoice stays as issued).
    public func correctionRefusal(_ field: DataField, in collection: DataCollection, of system: DataSystem)
        -> String?
    {
        guard isPersonal(field) else { return "is not personal data" }
        if collection.primaryKey.contains(field.name) { return "is the primary key of its rows" }
        if field.references != nil { return "links its rows to \(field.references!.collection)" }
        for other in systems {
            for referrer in other.collections {
                for candidate in referrer.fields {
                    guard let reference = candidate.references,
                        (reference.system ?? other.key) == system.key, reference.collection == collection.name,
                        reference.field == field.name
                    else { continue }
                    return "is referenced by \(other.key).\(referrer.name).\(candidate.name)"
                }
            }
        }
        if erasure(of: field) == .keep {
            return "is kept as recorded: "
                + (field.keepReason ?? field.category.flatMap { taxonomy[$0]?.keepReason }
                    ?? "kept")
        }
        return nil
    }

    /// Checks a request's corrections against the map: each names exactly one of a category (that
    /// some correctable field holds) or a mapped field (that can be corrected), with a value of 1 to
    /// 4,096 characters; no two set the same field. Errors name the offending correction.
    public func validate(corrections: [Correction]) throws(StewardError) {
        guard (1...Correction.limit).contains(corrections.count) else {
            throw StewardError(
                .requestCorrectionsMissing,
                "a rectification carries 1 to \(Correction.limit) corrections", field: "corrections")
        }
        var claimed: [String: Int] = [:]
        for (index, correction) in corrections.enumerated() {
            let at = "corrections[\(index)]"
            try FreeText.check(
                correction.value, field: at + ".value", maxLength: Correction.maxLength,
                lengthCode: .requestCorrectionInvalid)
            let fields = try targets(of: correction, at: at)
            for field in fields {
                if let earlier = claimed[field] {
                    throw StewardError(
                        .requestCorrectionConflict,
                        "sets \(field), which corrections[\(earlier)] sets already", field: at)
                }
                claimed[field] = index
            }
        }
    }

    /// Every field a rectification can set (`system.collection.field`), with its category: what
    /// the API's schema offers as `field` and (their categories) as `category`.
    public var correctableFields: [(path: String, category: String)] {
        var fields: [(path: String, category: String)] = []
        for system in systems {
            for collection in system.collections {
                for field in collection.fields where correctionRefusal(field, in: collection, of: system) == nil {
                    if let category = field.category {
                        fields.append(("\(system.key).\(collection.name).\(field.name)", category))
                    }
                }
            }
        }
        return fields
    }

    /// The fields (`system.collection.field`) a correction sets.
    func targets(of correction: Correction, at: String) throws(StewardError) -> [String] {
        switch (correction.category, correction.field) {
        case (let category?, nil):
            guard taxonomy[category] != nil else {
                throw StewardError(
                    .requestCorrectionUnmapped, "is not a category of the taxonomy", field: at + ".category")
            }
            var fields: [String] = []
            for system in systems {
                for collection in system.collections {
                    for field in collection.fields where field.category == category {
                        if correctionRefusal(field, in: collection, of: system) == nil {
                            fields.append("\(system.key).\(collection.name).\(field.name)")
                        }
                    }
                }
            }
            guard !fields.isEmpty else {
                throw StewardError(
                    .requestCorrectionUnmapped, "no field of the data map with this category can be corrected",
                    field: at + ".category")
            }
            return fields
        case (nil, let path?):
            let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let system = system(parts[0]), let collection = system.collection(parts[1]),
                let field = collection.fields.first(where: { $0.name == parts[2] })
            else {
                throw StewardError(
                    .requestCorrectionUnmapped, "is not a field of the data map (system.collection.field)",
                    field: at + ".field")
            }
            if let refusal = correctionRefusal(field, in: collection, of: system) {
                throw StewardError(
                    .requestCorrectionUnmapped, "\(path) cannot be corrected: it \(refusal)", field: at + ".field")
            }
            return [path]
        default:
            throw StewardError(.requestCorrectionInvalid, "names exactly one of category and field", field: at)
        }
    }

    /// Per collection, the fields the corrections set (and the category fields kept as they are,
    /// with why). Corrections are assumed valid (`validate(corrections:)`).
    func corrections(_ corrections: [Correction], in system: DataSystem, _ collection: DataCollection)
        -> (sets: [FieldCorrection], holds: [RequestPlan.Hold])
    {
        var sets: [FieldCorrection] = []
        var holds: [RequestPlan.Hold] = []
        for field in collection.fields {
            let path = "\(system.key).\(collection.name).\(field.name)"
            let refusal = correctionRefusal(field, in: collection, of: system)
            for (index, correction) in corrections.enumerated() {
                if correction.field == path, refusal == nil {
                    sets.append(FieldCorrection(field: field.name, correction: index))
                } else if let category = correction.category, field.category == category {
                    if let refusal {
                        holds.append(.init(field: field.name, reason: "not corrected: it \(refusal)"))
                    } else {
                        sets.append(FieldCorrection(field: field.name, correction: index))
                    }
                }
            }
        }
        return (sets, holds)
    }
}
