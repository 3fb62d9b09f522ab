import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// API keys, on PostgresSession.
extension PostgresSession {
    static func apiKeyQuery(where condition: String, binds: [ByteBuffer]) -> PostgresQuery {
        var bindings = PostgresBindings()
        for bind in binds { bindings.append(bind) }
        return PostgresQuery(
            unsafeSQL:
                "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys WHERE \(condition)",
            binds: bindings)
    }

    static func apiKey(_ row: PostgresRow) throws -> APIKeyRecord {
        let (id, name, role, prefix, created, revoked, _) = try row.decode(
            (UUID, String, String, String, Int64, Int64?, Data).self)
        return APIKeyRecord(
            id: id, name: name, role: try StoreError.stored(Role.self, role, column: "api_keys.role"), prefix: prefix,
            createdAt: Timestamp.date(micros: created), revokedAt: revoked.map(Timestamp.date(micros:)))
    }

    func apiKeys() async throws -> [APIKeyRecord] {
        try await rows(
            "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys ORDER BY created_at, id"
        ).map(Self.apiKey)
    }

    func apiKey(id: UUID) async throws -> APIKeyRecord? {
        try await rows(
            "SELECT id, name, role, prefix, created_at, revoked_at, key_hash FROM api_keys WHERE id = \(id)"
        ).first.map(Self.apiKey)
    }

    func insertAPIKey(_ key: APIKeyRecord, hash: Data) async throws {
        let buffer = ByteBuffer(bytes: hash)
        let revoked = key.revokedAt.map(Timestamp.micros)
        try await run(
            """
            INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at, revoked_at)
            VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(buffer), \(Timestamp.micros(key.createdAt)), \(revoked))
            """)
    }

    func revokeAPIKey(id: UUID, at: Date) async throws {
        try await run(
            "UPDATE api_keys SET revoked_at = \(Timestamp.micros(at)) WHERE id = \(id) AND revoked_at IS NULL")
    }
}
