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
    public var owner: String?
    public var purposes: [String]
    public var collections: [DataCollection]

    public init(
        key: String, name: String, kind: Kind, connection: ConnectionReference, owner: String?, purposes: [String],
        collections: [DataCollection]
    ) {
        self.key = key
        self.name = name
        self.kind = kind
        self.connection = connection
        self.owner = owner
        self.purposes = purposes
        self.collections = collections
    }

    public func collection(_ name: String) -> DataCollection? { collections.first { $0.name == name } }
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

    public init(
        name: String, category: String? = nil, identity: IdentityKind? = nil, references: FieldReference? = nil,
        erasure: ErasureStrategy? = nil, keepReason: String? = nil
    ) {
        self.name = name
        self.category = category
        self.identity = identity
        self.references = references
        self.erasure = erasure
        self.keepReason = keepReason
    }
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

    public init(taxonomy: Taxonomy, systems: [DataSystem]) {
        self.taxonomy = taxonomy
        self.systems = systems
    }

    public static let empty = DataMap(taxonomy: Taxonomy(categories: []), systems: [])

    public func system(_ key: String) -> DataSystem? { systems.first { $0.key == key } }

    /// A field's effective erasure strategy: its own, else its category's (inherited).
    public func erasure(of field: DataField) -> ErasureStrategy? {
        field.erasure ?? field.category.flatMap { taxonomy[$0]?.erasure }
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
