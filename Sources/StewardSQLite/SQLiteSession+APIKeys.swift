import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// API keys, on SQLiteSession.
extension SQLiteSession {
    static let apiKeyColumns = "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys"

    static func apiKey(_ row: SQLiteConnection.Row) throws -> APIKeyRecord {
        APIKeyRecord(
            id: try row.uuid(0), name: row.text(1),
            role: try StoreError.stored(Role.self, row.text(2), column: "api_keys.role"),
            prefix: row.text(3), createdAt: row.time(4), revokedAt: row.optionalTime(5))
    }

    func apiKeys() async throws -> [APIKeyRecord] {
        try connection.query(Self.apiKeyColumns + " ORDER BY created_at, id", [], Self.apiKey)
    }

    func apiKey(id: UUID) async throws -> APIKeyRecord? {
        try connection.query(Self.apiKeyColumns + " WHERE id = ?", [.uuid(id)], Self.apiKey).first
    }

    func insertAPIKey(_ key: APIKeyRecord, hash: Data) async throws {
        try connection.run(
            "INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                .uuid(key.id), .text(key.name), .text(key.role.rawValue), .text(key.prefix), .blob(hash),
                .time(key.createdAt), .time(key.revokedAt),
            ])
    }

    func revokeAPIKey(id: UUID, at: Date) async throws {
        try connection.run(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [.time(at), .uuid(id)])
    }
}
