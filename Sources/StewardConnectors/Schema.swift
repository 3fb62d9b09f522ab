public import StewardCore

/// What a live system holds, as its database describes itself: tables, columns, primary and foreign
/// keys. Names only — a connector never reads a value to build it.
public struct LiveSchema: Sendable, Hashable {
    public struct Column: Sendable, Hashable {
        public var name: String
        /// The declared type, as the database reports it (`TEXT`, `integer`, `character varying`).
        public var type: String
        public var notNull: Bool

        public init(name: String, type: String, notNull: Bool) {
            self.name = name
            self.type = type
            self.notNull = notNull
        }
    }

    public struct ForeignKey: Sendable, Hashable {
        public var column: String
        public var table: String
        public var referencedColumn: String

        public init(column: String, table: String, referencedColumn: String) {
            self.column = column
            self.table = table
            self.referencedColumn = referencedColumn
        }
    }

    public struct Table: Sendable, Hashable {
        public var name: String
        public var columns: [Column]
        public var primaryKey: [String]
        public var foreignKeys: [ForeignKey]

        public init(name: String, columns: [Column], primaryKey: [String], foreignKeys: [ForeignKey]) {
            self.name = name
            self.columns = columns
            self.primaryKey = primaryKey
            self.foreignKeys = foreignKeys
        }

        public func column(_ name: String) -> Column? { columns.first { $0.name == name } }
    }

    public var tables: [Table]

    public init(tables: [Table]) { self.tables = tables.sorted { $0.name < $1.name } }

    public func table(_ name: String) -> Table? { tables.first { $0.name == name } }
}

/// A difference between the data map and the live system.
public struct Drift: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A table the map does not declare.
        case undeclaredTable = "undeclared_table"
        /// A column of a declared table the map does not declare.
        case undeclaredColumn = "undeclared_column"
        /// A declared table the system does not have.
        case missingTable = "missing_table"
        /// A declared column the system does not have.
        case missingColumn = "missing_column"
        /// A foreign key the map does not declare as a reference (or declares to another field).
        case undeclaredForeignKey = "undeclared_foreign_key"
    }

    public var kind: Kind
    public var table: String
    public var column: String?
    /// For a foreign key: the `table.column` it points at.
    public var target: String?

    public init(kind: Kind, table: String, column: String? = nil, target: String? = nil) {
        self.kind = kind
        self.table = table
        self.column = column
        self.target = target
    }

    public var place: String { column.map { "\(table).\($0)" } ?? table }

    public var description: String {
        switch kind {
        case .undeclaredTable: "table \(table) is not in the map"
        case .undeclaredColumn: "column \(place) is not in the map: classify it"
        case .missingTable: "table \(table) is declared but the system has no such table"
        case .missingColumn: "column \(place) is declared but the system has no such column"
        case .undeclaredForeignKey:
            "foreign key \(place) → \(target ?? "?") is not declared as a reference in the map"
        }
    }
}

extension LiveSchema {
    /// The differences between `system` as the map declares it and this live schema, in a stable order.
    public func drift(from system: DataSystem) -> [Drift] {
        var found: [Drift] = []
        let declared = Dictionary(system.collections.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for table in tables {
            guard let collection = declared[table.name] else {
                found.append(Drift(kind: .undeclaredTable, table: table.name))
                continue
            }
            for column in table.columns where collection.field(column.name) == nil {
                found.append(Drift(kind: .undeclaredColumn, table: table.name, column: column.name))
            }
            for key in table.foreignKeys {
                let reference = collection.field(key.column)?.references
                let matches =
                    reference.map {
                        ($0.system == nil || $0.system == system.key) && $0.collection == key.table
                            && $0.field == key.referencedColumn
                    } ?? false
                if !matches, collection.field(key.column) != nil {
                    found.append(
                        Drift(
                            kind: .undeclaredForeignKey, table: table.name, column: key.column,
                            target: "\(key.table).\(key.referencedColumn)"))
                }
            }
        }
        for collection in system.collections {
            guard let table = table(collection.name) else {
                found.append(Drift(kind: .missingTable, table: collection.name))
                continue
            }
            for field in collection.fields where table.column(field.name) == nil {
                found.append(Drift(kind: .missingColumn, table: collection.name, column: field.name))
            }
        }
        return found.sorted {
            ($0.table, $0.column ?? "", $0.kind.rawValue) < ($1.table, $1.column ?? "", $1.kind.rawValue)
        }
    }
}
