import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// The store operations over one leased connection (a reader, or the writer inside a transaction),
/// one file per role: `SQLiteSession+Subjects.swift`, `+ConsentLedger`, `+APIKeys`, `+Audit`,
/// `+Settings`, `+Jobs`.
struct SQLiteSession: StoreTransaction, @unchecked Sendable {
    let connection: SQLiteConnection
}
