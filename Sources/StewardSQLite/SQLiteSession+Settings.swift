import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// Settings, on SQLiteSession.
extension SQLiteSession {
    func setting(_ key: String) async throws -> String? {
        try connection.query("SELECT value FROM settings WHERE key = ?", [.text(key)]) { $0.text(0) }.first
    }

    func settings(prefix: String) async throws -> [(key: String, value: String)] {
        try connection.query(
            "SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key", [.text(prefix)]
        ) { ($0.text(0), $0.text(1)) }
    }

    func setSetting(_ key: String, value: String) async throws {
        try connection.run(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }

    func deleteSetting(_ key: String) async throws {
        try connection.run("DELETE FROM settings WHERE key = ?", [.text(key)])
    }
}
