public import Foundation
public import StewardCore
import Synchronization

/// API keys: created and shown once, stored as a hash, revocable; and the authenticator the HTTP edge
/// calls on every request.
public final class KeyService: Sendable {
    let store: any StewardStore
    let crypto: CryptoSuite
    let runtime: Runtime
    let audit: AuditLog
    /// How long a successful look-up is trusted before the database is asked again. A revocation made
    /// through this process takes effect at once; one made by another instance within this bound.
    public let cacheLifetime: TimeInterval
    private let cache = Mutex<[Data: (record: APIKeyRecord, until: Date)]>([:])

    public init(store: any StewardStore, crypto: CryptoSuite, runtime: Runtime, cacheLifetime: TimeInterval = 5) {
        self.store = store
        self.crypto = crypto
        self.runtime = runtime
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
        self.cacheLifetime = cacheLifetime
    }

    /// The prefix every Steward key starts with, so secret scanners can find leaked keys.
    public static let keyPrefix = "stw_"

    /// Creates a key; the secret is returned once and never stored.
    public func create(name: String, role: Role, actor: String) async throws -> (record: APIKeyRecord, secret: String) {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        try FreeText.check(trimmed, field: "name", maxLength: 100, lengthCode: .keyInvalidName)
        let secret = Self.keyPrefix + Data(runtime.randomBytes(32)).base64URLString
        let record = APIKeyRecord(
            id: runtime.newID(), name: trimmed, role: role, prefix: String(secret.prefix(12)),
            createdAt: runtime.nowMicros(), revokedAt: nil)
        let hash = crypto.secrets.digest(secret)
        try await store.write { transaction in
            try await transaction.insertAPIKey(record, hash: hash)
            try await self.audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "key.created", targetType: "api_key",
                        targetID: record.id.lowercasedString, details: ["role": role.rawValue])
                ], in: transaction)
        }
        return (record, secret)
    }

    public func list() async throws -> [APIKeyRecord] {
        try await store.read { try await $0.apiKeys() }
    }

    /// Revokes a key; revoking a revoked key is a no-op that reports the original revocation.
    public func revoke(id: UUID, actor: String) async throws -> APIKeyRecord {
        let record: APIKeyRecord = try await store.write { transaction in
            guard var record = try await transaction.apiKey(id: id) else {
                throw StewardError(.keyNotFound, "no API key has this id")
            }
            if record.revokedAt != nil { return record }
            let now = self.runtime.nowMicros()
            try await transaction.revokeAPIKey(id: id, at: now)
            try await self.audit.append(
                [
                    AuditDraft(
                        actor: actor, action: "key.revoked", targetType: "api_key",
                        targetID: id.lowercasedString, details: ["role": record.role.rawValue])
                ], in: transaction)
            record.revokedAt = now
            return record
        }
        cache.withLock { entries in entries = entries.filter { $0.value.record.id != id } }
        return record
    }

    /// The principal of a key authenticated within the cache's lifetime, without reading the store;
    /// nil when it is not remembered (the caller then asks `authenticate`, which reads the store and
    /// refuses what it does not find).
    public func rememberedPrincipal(secret: String) -> Principal? {
        guard secret.hasPrefix(Self.keyPrefix), secret.utf8.count <= 128 else { return nil }
        return remembered(crypto.secrets.digest(secret), now: runtime.now())
    }

    func remembered(_ hash: Data, now: Date) -> Principal? {
        guard let hit = cache.withLock({ $0[hash] }), hit.until > now else { return nil }
        return hit.record.principal
    }

    /// The principal a bearer secret belongs to, or nil for an unknown, malformed or revoked key.
    public func authenticate(secret: String) async throws -> Principal? {
        guard secret.hasPrefix(Self.keyPrefix), secret.utf8.count <= 128 else { return nil }
        let hash = crypto.secrets.digest(secret)
        let now = runtime.now()
        if let principal = remembered(hash, now: now) { return principal }
        guard let (record, stored) = try await store.apiKey(hash: hash), constantTimeEquals(stored, hash),
            record.revokedAt == nil
        else {
            cache.withLock { _ = $0.removeValue(forKey: hash) }
            return nil
        }
        cache.withLock { entries in
            if entries.count > 10_000 { entries.removeAll(keepingCapacity: true) }
            entries[hash] = (record, now.addingTimeInterval(cacheLifetime))
        }
        return record.principal
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEquals(_ lhs: Data, _ rhs: Data) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (a, b) in zip(lhs, rhs) { difference |= a ^ b }
    return difference == 0
}
