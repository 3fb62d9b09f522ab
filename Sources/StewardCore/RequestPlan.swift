/// A collection of a system: `crm.customers`.
public struct CollectionRef: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var system: String
    public var collection: String

    public init(system: String, collection: String) {
        self.system = system
        self.collection = collection
    }

    public var description: String { "\(system).\(collection)" }
    public static func < (lhs: CollectionRef, rhs: CollectionRef) -> Bool {
        (lhs.system, lhs.collection) < (rhs.system, rhs.collection)
    }
}

/// What a data subject request does to the customer's systems, planned from the data map alone
/// (issue 18 item 3). Two phases, so that unlinking a row never loses the way to its children:
/// **locate** finds every row of the subject, parents before children (by identity fields, then
/// along references to located rows' keys); **effects** then act on those rows by primary key,
/// children before parents, so a delete never breaks a reference.
public struct RequestPlan: Sendable, Hashable {
    /// How a collection's rows of the subject are found.
    public enum Lookup: Sendable, Hashable, CustomStringConvertible {
        /// `field` equals one of the subject's identities of `kind`.
        case identity(field: String, kind: IdentityKind)
        /// `field` holds the `parentField` of a located row of `parent`.
        case reference(field: String, parent: CollectionRef, parentField: String)

        public var description: String {
            switch self {
            case .identity(let field, let kind): "\(field) = the subject's \(kind.rawValue)"
            case .reference(let field, let parent, let parentField): "\(field) in located \(parent).\(parentField)"
            }
        }
    }

    public struct Locate: Sendable, Hashable {
        public var target: CollectionRef
        public var primaryKey: [String]
        /// Any of these finds a row (their union).
        public var lookups: [Lookup]
    }

    /// A field's change on erasure.
    public struct Change: Sendable, Hashable {
        public var field: String
        /// `null`, `mask` or `hash`.
        public var strategy: ErasureStrategy

        public init(field: String, strategy: ErasureStrategy) {
            self.field = field
            self.strategy = strategy
        }
    }

    /// A field kept on erasure, and why (a legal hold or retention duty, from the map).
    public struct Hold: Sendable, Hashable {
        public var field: String
        public var reason: String
    }

    public enum Action: Sendable, Hashable {
        /// Access and portability: read the mapped fields.
        case read(fields: [String])
        case delete
        case update([Change])
        /// Rectification: set each field to its correction's value.
        case correct([FieldCorrection])
    }

    public struct Effect: Sendable, Hashable {
        public var target: CollectionRef
        public var action: Action
        /// Fields kept with their reason.
        public var holds: [Hold]
        /// Why rows that a field asks to delete are kept and changed field by field instead.
        public var rowKept: String?
    }

    public var locate: [Locate]
    public var effects: [Effect]
    /// Collections holding personal data that none of the request's identities reaches.
    public var unreached: [CollectionRef]

    public init(locate: [Locate], effects: [Effect], unreached: [CollectionRef]) {
        self.locate = locate
        self.effects = effects
        self.unreached = unreached
    }
}

extension DataMap {
    /// The SQL systems whose rows reference `key`'s (they find the subject's rows through it), unless
    /// `key`'s reference theirs too (then neither can go first, and the references are followed as
    /// they stand).
    public func referencing(_ key: String, identities kinds: Set<IdentityKind>) -> Set<String> {
        var references: Set<[String]> = []
        for step in plan(.access, identities: kinds).locate {
            for lookup in step.lookups {
                if case .reference(_, let parent, _) = lookup, parent.system != step.target.system {
                    references.insert([step.target.system, parent.system])
                }
            }
        }
        return Set(
            references.filter { $0[1] == key && !references.contains([key, $0[0]]) }.map { $0[0] }
                .filter { system($0)?.kind != .http })
    }

    /// The plan of a request of `type` for a subject known by identities of `kinds`. Types that
    /// change no customer data (restriction, objection, opt-out, limit) locate nothing here: they
    /// record a state in Steward that the consent check enforces. A rectification sets the fields its
    /// `corrections` name (validated by `validate(corrections:)`), in the systems that hold them.
    public func plan(
        _ type: RequestType, identities kinds: Set<IdentityKind>, corrections: [Correction] = []
    ) -> RequestPlan {
        struct Edge {
            var child: CollectionRef
            var field: DataField
            var parent: CollectionRef
            var parentField: String
        }
        var collections: [CollectionRef: (system: DataSystem, collection: DataCollection)] = [:]
        var edges: [Edge] = []
        for system in systems {
            for collection in system.collections {
                let ref = CollectionRef(system: system.key, collection: collection.name)
                collections[ref] = (system, collection)
                for field in collection.fields {
                    if let reference = field.references {
                        edges.append(
                            Edge(
                                child: ref, field: field,
                                parent: CollectionRef(
                                    system: reference.system ?? system.key, collection: reference.collection),
                                parentField: reference.field))
                    }
                }
            }
        }
        let touchesData: Bool =
            switch type {
            case .access, .portability, .erasure, .rectification: true
            case .restriction, .objection, .optOutSale, .limitSensitive: false
            }
        // Locate: identity roots, then children of located collections, breadth first (a stable
        // order: by name within each wave).
        var located: [RequestPlan.Locate] = []
        var index: [CollectionRef: Int] = [:]
        if touchesData {
            for ref in collections.keys.sorted() {
                let collection = collections[ref]!.collection
                let lookups = collection.fields.compactMap { field -> RequestPlan.Lookup? in
                    guard let kind = field.identity, kinds.contains(kind) else { return nil }
                    return .identity(field: field.name, kind: kind)
                }
                if !lookups.isEmpty {
                    index[ref] = located.count
                    located.append(.init(target: ref, primaryKey: collection.primaryKey, lookups: lookups))
                }
            }
            var frontier = located.map(\.target)
            while !frontier.isEmpty {
                var next: [CollectionRef] = []
                for edge in edges.sorted(by: { ($0.child, $0.field.name) < ($1.child, $1.field.name) })
                where frontier.contains(edge.parent) && collections[edge.child] != nil {
                    let lookup = RequestPlan.Lookup.reference(
                        field: edge.field.name, parent: edge.parent, parentField: edge.parentField)
                    if let at = index[edge.child] {
                        // Reached again: another way to its rows — only from a collection located before it.
                        if let parentAt = index[edge.parent], parentAt < at, !located[at].lookups.contains(lookup) {
                            located[at].lookups.append(lookup)
                        }
                        continue
                    }
                    index[edge.child] = located.count
                    located.append(
                        .init(
                            target: edge.child, primaryKey: collections[edge.child]!.collection.primaryKey,
                            lookups: [lookup]))
                    next.append(edge.child)
                }
                frontier = next
            }
        }
        let unreached = collections.keys.sorted().filter { ref in
            index[ref] == nil && collections[ref]!.collection.fields.contains(where: isPersonal)
        }
        guard touchesData else { return RequestPlan(locate: [], effects: [], unreached: []) }

        var effects: [RequestPlan.Effect] = []
        switch type {
        case .rectification:
            for locate in located {
                let (system, collection) = collections[locate.target]!
                let (sets, holds) = self.corrections(corrections, in: system, collection)
                guard !sets.isEmpty || !holds.isEmpty else { continue }
                effects.append(.init(target: locate.target, action: .correct(sets), holds: holds, rowKept: nil))
            }
            // Only the systems that hold a corrected field have work: the others locate nothing.
            let working = Set(effects.map(\.target.system))
            located = located.filter { working.contains($0.target.system) }
        case .access, .portability:
            effects = located.map { locate in
                RequestPlan.Effect(
                    target: locate.target,
                    action: .read(fields: collections[locate.target]!.collection.fields.map(\.name)), holds: [],
                    rowKept: nil)
            }
        default:
            // Each collection's wish from its fields' strategies.
            var deletes: Set<CollectionRef> = []
            var changes: [CollectionRef: [RequestPlan.Change]] = [:]
            var holds: [CollectionRef: [RequestPlan.Hold]] = [:]
            var rowKept: [CollectionRef: String] = [:]
            var nulledLinks: Set<String> = []
            for locate in located {
                let ref = locate.target
                var wantsDelete = false
                let primaryKey = Set(collections[ref]!.collection.primaryKey)
                for field in collections[ref]!.collection.fields {
                    let strategy = erasure(of: field)
                    // A primary key is how rows are found and referenced: it goes with its row or
                    // stays; it is never nulled, masked or hashed in place.
                    if primaryKey.contains(field.name) {
                        if strategy == .deleteRow { wantsDelete = true }
                        continue
                    }
                    if field.references != nil, strategy == .null {
                        nulledLinks.insert("\(ref).\(field.name)")
                    }
                    switch strategy {
                    case .deleteRow?: wantsDelete = true
                    case .keep?:
                        holds[ref, default: []].append(
                            .init(
                                field: field.name,
                                reason: field.keepReason ?? field.category.flatMap { taxonomy[$0]?.keepReason }
                                    ?? "kept"))
                    case .null?, .mask?, .hash?:
                        changes[ref, default: []].append(.init(field: field.name, strategy: strategy!))
                    case nil: break
                    }
                }
                if wantsDelete {
                    if let held = holds[ref]?.first {
                        rowKept[ref] = "the row is kept for \(held.field): \(held.reason)"
                    } else {
                        deletes.insert(ref)
                    }
                }
            }
            // A row may go only when no kept row still references it through a link that is not
            // nulled: until that holds, parents fall back to changing their fields.
            var changed = true
            while changed {
                changed = false
                for edge in edges where deletes.contains(edge.parent) && index[edge.child] != nil {
                    if !deletes.contains(edge.child) && !nulledLinks.contains("\(edge.child).\(edge.field.name)") {
                        deletes.remove(edge.parent)
                        rowKept[edge.parent] =
                            "the row is kept: kept rows of \(edge.child) reference it through \(edge.field.name)"
                        changed = true
                    }
                }
            }
            for locate in located.reversed() {
                let ref = locate.target
                let action: RequestPlan.Action
                if deletes.contains(ref) {
                    action = .delete
                } else {
                    // Fields that asked for the row to go are nulled when the row stays.
                    var list = changes[ref] ?? []
                    if rowKept[ref] != nil {
                        let primaryKey = Set(collections[ref]!.collection.primaryKey)
                        for field in collections[ref]!.collection.fields
                        where erasure(of: field) == .deleteRow && !primaryKey.contains(field.name)
                            && !list.contains(where: { $0.field == field.name })
                        {
                            list.append(.init(field: field.name, strategy: .null))
                        }
                    }
                    action = .update(list)
                }
                effects.append(
                    .init(
                        target: ref, action: action, holds: holds[ref] ?? [],
                        rowKept: deletes.contains(ref) ? nil : rowKept[ref]))
            }
        }
        return RequestPlan(locate: located, effects: effects, unreached: unreached)
    }
}
