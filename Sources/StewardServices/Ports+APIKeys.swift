public import Foundation
public import StewardCore

/// An API key as stored: never the secret, only its hash (kept by the store) and a display prefix.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: UUID
    public var name: String
    public var role: Role
    /// The first characters of the key (`stw_AbCd1234`), enough for a person to tell keys apart.
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: UUID, name: String, role: Role, prefix: String, createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.role = role
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    public var principal: Principal { Principal(id: "key:\(id.lowercasedString)", name: name, role: role) }
}

/// Reads of API keys (the hot path's look-up by hash is `StewardStore.apiKey(hash:)`).
public protocol APIKeyReading: Sendable {
    func apiKeys() async throws -> [APIKeyRecord]
    func apiKey(id: UUID) async throws -> APIKeyRecord?
}

/// Writes of API keys: the hash of the secret only, never the secret.
public protocol APIKeyWriting: APIKeyReading {
    func insertAPIKey(_ key: APIKeyRecord, hash: Data) async throws
    func revokeAPIKey(id: UUID, at: Date) async throws
}
