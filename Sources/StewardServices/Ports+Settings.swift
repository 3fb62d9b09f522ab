/// Reads of the key-value settings (the policy digest of the last load; key-binding markers).
public protocol SettingsReading: Sendable {
    func setting(_ key: String) async throws -> String?
    /// Every setting whose key starts with `prefix`, ordered by key.
    func settings(prefix: String) async throws -> [(key: String, value: String)]
}

/// Writes of settings.
public protocol SettingsWriting: SettingsReading {
    func setSetting(_ key: String, value: String) async throws
    func deleteSetting(_ key: String) async throws
}
