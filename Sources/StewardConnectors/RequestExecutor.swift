import Foundation
import PostgresDriver
public import StewardCore

/// Carries out one system's part of a data subject request (ADR 0011): plans from the data map
/// with the foreign keys the live schema has added as references, then in **one transaction**
/// locates the subject's rows (parents first, one statement per collection and chunk of keys),
/// applies the effects by primary key children first in batched statements, and re-reads: every
/// deleted row is gone, every changed field holds its target, and the identity lookups find
/// nothing left to act on. If the re-read fails, the transaction rolls back and the error says
/// where. `beforeCommit` runs after the verification and before the commit (the job records its
/// pending receipt there); if it throws, nothing commits.
public struct RequestExecutor: Sendable {
    public let system: DataSystem
    public let map: DataMap
    public let connection: SystemConnection
    /// Another system's connection, for the references this system's rows make to it (nil: such
    /// references are reported in the receipt's `crossSystemLookups`, not followed).
    public let reach: (@Sendable (String) throws -> SystemConnection)?

    public init(
        system: DataSystem, map: DataMap, connection: SystemConnection,
        reach: (@Sendable (String) throws -> SystemConnection)? = nil
    ) {
        self.system = system
        self.map = map
        self.connection = connection
        self.reach = reach
    }

    public struct Outcome: Sendable {
        public var receipt: SystemReceipt
        /// The rows read, for access and portability (nil otherwise).
        public var rows: SubjectRows?
    }

    public func execute(
        _ type: RequestType, identities: SubjectIdentities, corrections: [Correction] = [],
        hash: @escaping @Sendable (String) -> String,
        beforeCommit: @escaping @Sendable (SystemReceipt) async throws -> Void
    ) async throws -> Outcome {
        guard type.touchesCustomerData else {
            return Outcome(receipt: SystemReceipt(system: system.key, type: type, collections: [], verified: true))
        }
        let foreign = try await foreignKeys(identities: identities)
        return try await Self.withSession(connection, system: system.key, writing: !type.reads) { session in
            try await run(
                type, identities: identities, corrections: corrections, foreign: foreign, hash: hash,
                beforeCommit: beforeCommit, session: session)
        }
    }

    /// Runs `body` with one work session on a SQL system.
    static func withSession<T: Sendable>(
        _ connection: SystemConnection, system key: String, writing: Bool,
        _ body: @Sendable (any WorkSession) async throws -> T
    ) async throws -> T {
        switch connection {
        case .sqlite(let connector):
            return try await body(try SQLiteWorkSession(path: connector.path, writing: writing))
        case .postgres(let connector):
            return try await connector.withWritableConnection { connection in
                let parts = connector.parts
                return try await body(
                    PostgresWorkSession(
                        connection: connection, logger: connector.logger,
                        place: "\(parts.host):\(parts.port)/\(parts.database ?? parts.user)?\(parts.searchPath ?? "")"))
            }
        case .http:
            throw ConnectorError(
                "system '\(key)' is an http system: its requests are delivered (HTTPSystemClient), not executed",
                code: .connectorUnsupported)
        }
    }

    /// The values this system's rows reference in other systems' collections (a cross-system
    /// reference, `billing.invoices.customer_id → crm.customers.id`): the subject's rows located
    /// there, read-only, with the same identities, before this system's own transaction. An erasure
    /// of the other system waits for this one (`RequestTaskJob`), so its rows are still there.
    func foreignKeys(identities: SubjectIdentities) async throws -> [CollectionRef: [String: [Cell]]] {
        guard let reach else { return [:] }
        var wanted: [String: [CollectionRef: Set<String>]] = [:]
        for step in map.plan(.access, identities: identities.kinds).locate where step.target.system == system.key {
            for lookup in step.lookups {
                if case .reference(_, let parent, let field) = lookup, parent.system != system.key {
                    wanted[parent.system, default: [:]][parent, default: []].insert(field)
                }
            }
        }
        var found: [CollectionRef: [String: [Cell]]] = [:]
        for (key, references) in wanted.sorted(by: { $0.key < $1.key }) {
            guard let declared = map.system(key), declared.kind != .http else { continue }
            let map = self.map
            let values = try await Self.withSession(try reach(key), system: key, writing: false) { session in
                try await Self.locate(
                    references, in: declared, map: map, identities: identities, session: session)
            }
            found.merge(values) { $0.merging($1) { $1 } }
        }
        return found
    }

    /// The values of `references` (collection → columns) among the subject's rows located in
    /// `system`, in a read-only transaction that is rolled back.
    static func locate(
        _ references: [CollectionRef: Set<String>], in system: DataSystem, map: DataMap, identities: SubjectIdentities,
        session: some WorkSession
    ) async throws -> [CollectionRef: [String: [Cell]]] {
        try await session.begin(writing: false)
        do {
            let schema = try await session.schema()
            let parentMap = map.addingForeignKeys(of: schema, system: system.key)
            var work = Work(
                system: parentMap.system(system.key) ?? system, schema: schema,
                plan: parentMap.plan(.access, identities: identities.kinds).only(system: system.key),
                identities: identities, session: session)
            work.recognise = identities.recognition?.matches
            for (ref, columns) in references { work.extraColumns[ref.collection] = columns.sorted() }
            var ignored: [String] = []
            try await work.locate(crossSystem: &ignored)
            var values: [CollectionRef: [String: [Cell]]] = [:]
            for (ref, columns) in references {
                for column in columns { values[ref, default: [:]][column] = work.locatedValues(ref, column: column) }
            }
            try await session.rollback()
            return values
        } catch {
            try? await session.rollback()
            throw error
        }
    }

    func run(
        _ type: RequestType, identities: SubjectIdentities, corrections: [Correction] = [],
        foreign: [CollectionRef: [String: [Cell]]] = [:], hash: @escaping @Sendable (String) -> String,
        beforeCommit: @escaping @Sendable (SystemReceipt) async throws -> Void, session: some WorkSession
    ) async throws -> Outcome {
        try await session.begin(writing: !type.reads)
        do {
            let schema = try await session.schema()
            let map = self.map.addingForeignKeys(of: schema, system: system.key)
            let plan = map.plan(type, identities: identities.kinds, corrections: corrections).only(system: system.key)
            var work = Work(
                system: map.systems.first { $0.key == system.key }!, schema: schema, plan: plan,
                identities: identities, session: session)
            work.recognise = identities.recognition?.matches
            work.foreign = foreign
            let outcome = try await work.carryOut(type, corrections: corrections, hash: hash)
            if !type.reads {
                guard outcome.receipt.verified else {
                    let found =
                        type == .rectification
                        ? "rectification found fields not holding their corrected values"
                        : "erasure found the subject's values left"
                    throw ConnectorError(
                        "system '\(system.key)': the re-read after \(found) in \(work.unverified.joined(separator: ", ")); nothing was committed",
                        code: .requestVerificationFailed)
                }
                try await beforeCommit(outcome.receipt)
            }
            try await session.commit()
            return outcome
        } catch {
            try? await session.rollback()
            throw error
        }
    }
}

/// A cell of a customer row as the executor carries it: typed on SQLite, text on PostgreSQL (cast
/// back to the column's type when bound).
enum Cell: Hashable, Sendable {
    case null
    case int(Int64)
    case text(String)
    case blob(Data)

    var text: String? {
        switch self {
        case .null: nil
        case .int(let value): String(value)
        case .text(let value): value
        case .blob(let value): value.base64EncodedString()
        }
    }
}

/// How a changed field is set.
enum Assignment: Sendable {
    case null
    /// The type's fixed mask: `*` for text, 0 for numbers, NULL for anything else.
    case mask
    /// One value per row, in the order of the rows given.
    case values([Cell])
}

/// Rows of a collection whose `column` holds one of `values`: compared as stored, or with case folded
/// on both sides (an identity field whose `match` is case-insensitive, every email field by default).
struct LocateCondition: Sendable {
    var column: String
    var values: [Cell]
    var foldCase = false
}

/// One transaction on one customer system, as the executor needs it. Statements are batched:
/// a list of keys is one statement (or a few chunks), never one per row.
protocol WorkSession: Sendable {
    func begin(writing: Bool) async throws
    func commit() async throws
    func rollback() async throws
    func schema() async throws -> LiveSchema
    /// `columns` of the rows where any of the columns holds one of its values; locked for update
    /// when writing.
    func select(_ table: String, columns: [String], anyOf: [LocateCondition]) async throws -> [[Cell]]
    /// `columns` of every row whose `column` is not NULL and, read as text, satisfies `keep`
    /// (streamed: only the rows kept are held).
    func scan(_ table: String, columns: [String], column: String, keep: @escaping @Sendable (String) -> Bool)
        async throws -> [[Cell]]
    /// `columns` of the rows with these keys.
    func select(_ table: String, columns: [String], keys: [String], rows: [[Cell]]) async throws -> [[Cell]]
    func delete(_ table: String, keys: [String], rows: [[Cell]]) async throws -> Int
    func update(_ table: String, keys: [String], rows: [[Cell]], set: [(column: String, to: Assignment)])
        async throws -> Int
    /// The value a masked column holds afterwards, as this session reads it back.
    func mask(_ table: String, _ column: String) -> Cell
}

extension DataMap {
    /// The map with every foreign key of the live schema of `system` as a reference: a key on a
    /// mapped field that declares none becomes its reference; a key on an unmapped column or table
    /// adds the column (no category: never changed) so the rows that hold it keep their parent.
    func addingForeignKeys(of schema: LiveSchema, system key: String) -> DataMap {
        guard let at = systems.firstIndex(where: { $0.key == key }) else { return self }
        var map = self
        var system = systems[at]
        for table in schema.tables where !table.foreignKeys.isEmpty {
            var collection =
                system.collection(table.name)
                ?? DataCollection(name: table.name, primaryKey: table.primaryKey, fields: [])
            for foreignKey in table.foreignKeys {
                let reference = FieldReference(
                    system: nil, collection: foreignKey.table, field: foreignKey.referencedColumn)
                if let index = collection.fields.firstIndex(where: { $0.name == foreignKey.column }) {
                    if collection.fields[index].references == nil { collection.fields[index].references = reference }
                } else {
                    collection.fields.append(DataField(name: foreignKey.column, references: reference))
                }
            }
            if let index = system.collections.firstIndex(where: { $0.name == table.name }) {
                system.collections[index] = collection
            } else {
                system.collections.append(collection)
            }
        }
        map.systems[at] = system
        return map
    }
}

/// One run of a system's plan inside the open transaction.
struct Work<Session: WorkSession> {
    let system: DataSystem
    let schema: LiveSchema
    let plan: RequestPlan
    let identities: SubjectIdentities
    let session: Session
    /// Located rows per collection: the columns read (primary key first) and the rows.
    var located: [String: (columns: [String], rows: [[Cell]])] = [:]
    /// Where the re-read found something left.
    var unverified: [String] = []
    /// Recognises identities known by keyed hash only (reapplying erasures).
    var recognise: (@Sendable (IdentityKind, String) -> Bool)?
    /// Values located in other systems that this system's rows reference (`foreignKeys`).
    var foreign: [CollectionRef: [String: [Cell]]] = [:]
    /// Columns to read of a collection's located rows besides its key and this system's lookups
    /// (another system's rows reference them).
    var extraColumns: [String: [String]] = [:]

    init(system: DataSystem, schema: LiveSchema, plan: RequestPlan, identities: SubjectIdentities, session: Session) {
        self.system = system
        self.schema = schema
        self.plan = plan
        self.identities = identities
        self.session = session
    }

    func collection(_ name: String) throws -> DataCollection {
        guard let collection = system.collection(name) else {
            throw ConnectorError("system '\(system.key)' has no collection \(name) in its map")
        }
        guard !collection.primaryKey.isEmpty else {
            throw ConnectorError(
                "\(system.key).\(name) declares no primary_key: its rows cannot be acted on by key",
                code: .connectorUnsupported)
        }
        guard let table = schema.table(name) else {
            throw ConnectorError("\(system.key).\(name) is in the map but not in the system (run `steward map drift`)")
        }
        for field in collection.fields where table.column(field.name) == nil {
            throw ConnectorError(
                "\(system.key).\(name).\(field.name) is in the map but not in the system (run `steward map drift`)")
        }
        return collection
    }

    /// The columns of `name` that a later lookup reads from its located rows.
    func neededColumns(of ref: CollectionRef) -> [String] {
        var columns: [String] = []
        for step in plan.locate {
            for lookup in step.lookups {
                if case .reference(_, let parent, let parentField) = lookup, parent == ref,
                    !columns.contains(parentField)
                {
                    columns.append(parentField)
                }
            }
        }
        return columns
    }

    /// The values of `column` among the located rows of `ref`.
    func locatedValues(_ ref: CollectionRef, column: String) -> [Cell] {
        guard let rows = located[ref.collection], let at = rows.columns.firstIndex(of: column) else { return [] }
        return Array(Set(rows.rows.map { $0[at] }.filter { $0 != .null }))
    }

    func conditions(_ step: RequestPlan.Locate, crossSystem: inout [String]) -> [LocateCondition] {
        var conditions: [LocateCondition] = []
        let fields = system.collections.first { $0.name == step.target.collection }?.fields ?? []
        for lookup in step.lookups {
            switch lookup {
            case .identity(let field, let kind):
                let values = (identities.values[kind] ?? []).map(Cell.text)
                let foldCase = fields.first { $0.name == field }?.matchesFoldingCase ?? false
                if !values.isEmpty {
                    conditions.append(LocateCondition(column: field, values: values, foldCase: foldCase))
                }
            case .reference(let field, let parent, let parentField):
                guard parent.system == system.key else {
                    if let values = foreign[parent]?[parentField] {
                        if !values.isEmpty { conditions.append(LocateCondition(column: field, values: values)) }
                    } else {
                        crossSystem.append("\(step.target).\(field) → \(parent).\(parentField)")
                    }
                    continue
                }
                let values = locatedValues(parent, column: parentField)
                if !values.isEmpty { conditions.append(LocateCondition(column: field, values: values)) }
            }
        }
        return conditions
    }

    mutating func locate(crossSystem: inout [String]) async throws {
        for step in plan.locate {
            let collection = try collection(step.target.collection)
            var columns = collection.primaryKey
            for column in neededColumns(of: step.target) + extraColumns[step.target.collection, default: []]
            where !columns.contains(column) {
                columns.append(column)
            }
            let conditions = conditions(step, crossSystem: &crossSystem)
            var rows =
                conditions.isEmpty
                ? [] : try await session.select(step.target.collection, columns: columns, anyOf: conditions)
            rows = try await adding(recognised(step, columns: columns, except: []), to: rows)
            located[step.target.collection] = (columns, rows)
        }
    }

    /// Rows found by recognising their identity fields (keyed hashes), except through `held` fields.
    func recognised(_ step: RequestPlan.Locate, columns: [String], except held: Set<String>) async throws -> [[Cell]] {
        guard let recognise else { return [] }
        var rows: [[Cell]] = []
        for lookup in step.lookups {
            guard case .identity(let field, let kind) = lookup, !held.contains(field) else { continue }
            rows = adding(
                try await session.scan(step.target.collection, columns: columns, column: field) { recognise(kind, $0) },
                to: rows)
        }
        return rows
    }

    func adding(_ more: [[Cell]], to rows: [[Cell]]) -> [[Cell]] {
        guard !more.isEmpty else { return rows }
        var seen = Set(rows)
        return rows + more.filter { seen.insert($0).inserted }
    }

    func keys(_ name: String) -> [[Cell]] {
        guard let rows = located[name], let collection = system.collection(name) else { return [] }
        return rows.rows.map { Array($0.prefix(collection.primaryKey.count)) }
    }

    mutating func carryOut(
        _ type: RequestType, corrections: [Correction] = [], hash: @Sendable (String) -> String
    ) async throws -> RequestExecutor.Outcome {
        var crossSystem: [String] = []
        try await locate(crossSystem: &crossSystem)
        var receipts: [String: SystemReceipt.Collection] = [:]
        for step in plan.locate {
            receipts[step.target.collection] = .init(
                collection: step.target.collection, located: located[step.target.collection]?.rows.count ?? 0)
        }
        var rows = type.reads ? SubjectRows(system: system.key) : nil
        // What each changed field must hold afterwards, for the re-read.
        var expected: [String: (columns: [String], targets: [[Cell]: [Cell]])] = [:]
        for effect in plan.effects {
            let name = effect.target.collection
            let collection = try collection(name)
            let keys = keys(name)
            var receipt = receipts[name]!
            for hold in effect.holds { receipt.held[hold.field] = hold.reason }
            receipt.rowKept = effect.rowKept
            switch effect.action {
            case .read(let fields):
                if !keys.isEmpty {
                    let read = try await session.select(name, columns: fields, keys: collection.primaryKey, rows: keys)
                    receipt.read = read.count
                    rows?.collections[name] = read.map { row in
                        Dictionary(uniqueKeysWithValues: zip(fields, row.map(\.text)))
                    }
                } else {
                    rows?.collections[name] = []
                }
            case .delete:
                if !keys.isEmpty {
                    receipt.deleted = try await session.delete(name, keys: collection.primaryKey, rows: keys)
                }
            case .update(let planned):
                // A column the system declares NOT NULL cannot be emptied: it is masked instead.
                let changes = planned.map { change -> RequestPlan.Change in
                    guard change.strategy == .null, schema.table(name)?.column(change.field)?.notNull == true else {
                        return change
                    }
                    return .init(field: change.field, strategy: .mask)
                }
                for change in changes { receipt.fields[change.field] = change.strategy.rawValue }
                guard !keys.isEmpty, !changes.isEmpty else { break }
                // Read the fields first: only rows not yet in their target state are changed (a
                // rerun after a committed attempt changes nothing and counts nothing), and a hash is
                // computed from the value it replaces.
                let columns = changes.map(\.field)
                let (targets, pending) = try await targets(name, collection, keys: keys, columns: columns) { current in
                    zip(changes, current).map { change, value -> Cell in
                        switch change.strategy {
                        case .hash:
                            guard let text = value.text else { return .null }
                            return Self.isHash(text) ? value : .text(hash(text))
                        case .mask: return session.mask(name, change.field)
                        default: return .null
                        }
                    }
                }
                let set = changes.enumerated().map { offset, change -> (column: String, to: Assignment) in
                    switch change.strategy {
                    case .hash: (change.field, .values(pending.map { targets[$0]![offset] }))
                    case .mask: (change.field, .mask)
                    default: (change.field, .null)
                    }
                }
                if !pending.isEmpty {
                    receipt.changed = try await session.update(
                        name, keys: collection.primaryKey, rows: pending, set: set)
                }
                expected[name] = (columns, targets)
            case .correct(let sets):
                for set in sets { receipt.fields[set.field] = "corrected" }
                guard !keys.isEmpty, !sets.isEmpty else { break }
                // Only rows not holding their corrected values yet are changed (a rerun changes none).
                let columns = sets.map(\.field)
                let target = sets.map { Cell.text(corrections[$0.correction].value) }
                let (targets, pending) = try await targets(name, collection, keys: keys, columns: columns) { _ in target
                }
                if !pending.isEmpty {
                    receipt.changed = try await session.update(
                        name, keys: collection.primaryKey, rows: pending,
                        set: columns.enumerated().map { offset, column in
                            (column, .values(Array(repeating: target[offset], count: pending.count)))
                        })
                }
                expected[name] = (columns, targets)
            }
            receipts[name] = receipt
        }
        var verified = true
        if !type.reads {
            verified = try await verify(
                expected: expected, crossSystem: &crossSystem, identitiesGone: type != .rectification)
        }
        let receipt = SystemReceipt(
            system: system.key, type: type,
            collections: plan.locate.map { receipts[$0.target.collection]! },
            verified: verified, crossSystemLookups: Array(Set(crossSystem)).sorted())
        return RequestExecutor.Outcome(receipt: receipt, rows: rows)
    }

    /// Reads `columns` of the located rows and gives each row its target values (from its current
    /// ones): every row's target, for the re-read, and the keys of the rows not holding theirs yet —
    /// the only ones changed, so a rerun after a committed attempt changes and counts nothing.
    func targets(
        _ name: String, _ collection: DataCollection, keys: [[Cell]], columns: [String],
        _ target: ([Cell]) -> [Cell]
    ) async throws -> (targets: [[Cell]: [Cell]], pending: [[Cell]]) {
        let width = collection.primaryKey.count
        var targets: [[Cell]: [Cell]] = [:]
        var pending: [[Cell]] = []
        for row in try await session.select(
            name, columns: collection.primaryKey + columns, keys: collection.primaryKey, rows: keys)
        {
            let key = Array(row.prefix(width))
            let values = target(Array(row.dropFirst(width)))
            targets[key] = values
            if zip(row.dropFirst(width), values).contains(where: { $0.text != $1.text }) { pending.append(key) }
        }
        return (targets, pending)
    }

    /// A keyed hash as the executor writes it (64 hex digits).
    static func isHash(_ value: String) -> Bool {
        value.utf8.count == 64 && value.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The re-read: deleted rows are gone, changed fields hold their target, and (an erasure,
    /// `identitiesGone`) the identity lookups find no row whose identity field is not held.
    mutating func verify(
        expected: [String: (columns: [String], targets: [[Cell]: [Cell]])], crossSystem: inout [String],
        identitiesGone: Bool
    ) async throws -> Bool {
        for effect in plan.effects {
            let name = effect.target.collection
            let collection = try collection(name)
            let keys = keys(name)
            guard !keys.isEmpty else { continue }
            switch effect.action {
            case .delete:
                let left = try await session.select(
                    name, columns: collection.primaryKey, keys: collection.primaryKey, rows: keys)
                if !left.isEmpty { unverified.append("\(system.key).\(name) (\(left.count) rows not deleted)") }
            case .update, .correct:
                guard let (columns, targets) = expected[name], !columns.isEmpty else { continue }
                let now = try await session.select(
                    name, columns: collection.primaryKey + columns, keys: collection.primaryKey, rows: keys)
                let width = collection.primaryKey.count
                for row in now {
                    guard let target = targets[Array(row.prefix(width))] else { continue }
                    for (offset, value) in row.dropFirst(width).enumerated() where value.text != target[offset].text {
                        unverified.append("\(system.key).\(name).\(columns[offset])")
                    }
                }
            case .read: break
            }
        }
        guard identitiesGone else { return unverified.isEmpty }
        // Nothing left to find by identity, except through a field that is held.
        let before = located
        located = [:]
        var again: [String] = []
        for step in plan.locate {
            let collection = try collection(step.target.collection)
            // Held fields stay; so does the primary key of a row that is kept and changed.
            let effect = plan.effects.first { $0.target == step.target }
            var held = Set(effect?.holds.map(\.field) ?? [])
            if case .update? = effect?.action { held.formUnion(collection.primaryKey) }
            let conditions = conditions(step, crossSystem: &again).filter { condition in
                !held.contains(condition.column)
                    && step.lookups.contains { lookup in
                        if case .identity(let field, _) = lookup { return field == condition.column }
                        return false
                    }
            }
            var rows =
                conditions.isEmpty
                ? []
                : try await session.select(step.target.collection, columns: collection.primaryKey, anyOf: conditions)
            rows = adding(try await recognised(step, columns: collection.primaryKey, except: held), to: rows)
            if !rows.isEmpty { unverified.append("\(step.target) (\(rows.count) rows still found by identity)") }
        }
        located = before
        return unverified.isEmpty
    }
}
