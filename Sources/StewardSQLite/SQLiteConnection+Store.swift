import SQLiteDriver
import StewardServices

extension SQLiteConnection {
    /// A connection of Steward's own store: a UNIQUE or PRIMARY KEY violation becomes
    /// `StoreError.uniqueViolation` (a lost first-sight race the services retry).
    static func store(path: String, readOnly: Bool, role: Role) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path, readOnly: readOnly, role: role)
        connection.mapError = { error in
            // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555): C macros Swift cannot import.
            if error.code == 2067 || error.code == 1555 { return StoreError.uniqueViolation }
            return error
        }
        return connection
    }
}
