import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// Settings, on PostgresSession.
extension PostgresSession {
    func setting(_ key: String) async throws -> String? {
        try await rows("SELECT value FROM settings WHERE key = \(key)").first.map { try $0.decode(String.self) }
    }

    func settings(prefix: String) async throws -> [(key: String, value: String)] {
        try await rows("SELECT key, value FROM settings WHERE left(key, length(\(prefix))) = \(prefix) ORDER BY key")
            .map { try $0.decode((String, String).self) }
            .map { (key: $0.0, value: $0.1) }
    }

    func deleteSetting(_ key: String) async throws {
        try await run("DELETE FROM settings WHERE key = \(key)")
    }

    func setSetting(_ key: String, value: String) async throws {
        try await run(
            "INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    }
}
