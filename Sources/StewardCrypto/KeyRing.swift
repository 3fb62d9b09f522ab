public import Crypto
public import Foundation
public import StewardCore
public import StewardServices
#if canImport(Glibc)
    import Glibc
#endif

/// Errors of key handling. Messages name files and reasons, never key material.
public struct KeyError: CataloguedError, Sendable, CustomStringConvertible {
    public var description: String
    public var code: StewardError.Code { .rootKeyInvalid }
    public init(_ description: String) { self.description = description }
}

/// The root key: 256 bits held outside the database (a file with mode 0400, or the environment).
public struct RootKey: Sendable {
    let key: SymmetricKey

    public init(bytes: Data) throws {
        guard bytes.count == 32 else { throw KeyError("a root key must be 32 bytes (256 bits), base64-encoded") }
        self.key = SymmetricKey(data: bytes)
    }

    /// Parses the base64 text form used in key files and `STEWARD_ROOT_KEY`.
    public init(base64 text: String) throws {
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw KeyError("the root key is not valid base64")
        }
        try self.init(bytes: bytes)
    }

    /// Reads a key file, refusing one that group or others may read.
    public static func load(file path: String) throws -> RootKey {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw KeyError("cannot read the root key file \(path)")
        }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw KeyError(
                "the root key file \(path) is readable by group or others (mode \(String(mode, radix: 8))); chmod 400 it"
            )
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw KeyError("cannot read the root key file \(path)") }
        return try RootKey(base64: text)
    }

    /// Generates a new random root key file with mode 0400. Never replaces a file: when one appeared
    /// meanwhile (another command generating at the same moment), that key is loaded instead.
    public static func generate(file path: String) throws -> RootKey {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let text = Array((bytes.base64EncodedString() + "\n").utf8)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o400)
        if descriptor < 0 {
            if errno == EEXIST { return try load(file: path) }
            throw KeyError("cannot create the root key file \(path)")
        }
        defer { close(descriptor) }
        let written = text.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(descriptor) == 0 else {
            throw KeyError("cannot write the root key file \(path)")
        }
        return try RootKey(bytes: bytes)
    }

    /// The key check value stored with the data (`KeyBinding`): an HMAC of a fixed label under a key
    /// derived for this purpose alone, 128 bits, as `v1:<hex>`. It tells whether a key is the one the
    /// data was written with, and reveals nothing about the key or any other subkey.
    public var checkValue: String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("steward key check value".utf8), using: derive("steward/v1/key-check"))
        return "v1:" + Data(mac.prefix(16)).hexString
    }

    /// The crypto services for the use cases, every key derived from this root by HKDF-SHA-256 with a
    /// distinct label, so one subkey reveals nothing about another. (The per-subject data keys of the
    /// full hierarchy come with the encryption-at-rest work.)
    public func suite() -> CryptoSuite {
        CryptoSuite(
            cipher: AESGCMFieldCipher(key: derive("steward/v1/field-encryption"), keyVersion: 1),
            indexer: HMACBlindIndexer(root: self),
            sealer: SHA256AuditSealer(),
            secrets: SHA256SecretDigest())
    }

    func derive(_ label: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, salt: Data("steward-root-v1".utf8), info: Data(label.utf8), outputByteCount: 32)
    }
}

/// AES-256-GCM envelopes: `version(1) | key version(4, big endian) | nonce(12) | ciphertext | tag(16)`,
/// with the field context (table, column, row id, subject id) as associated data.
public struct AESGCMFieldCipher: FieldCipher {
    static let formatVersion: UInt8 = 1
    let key: SymmetricKey
    let keyVersion: UInt32

    public init(key: SymmetricKey, keyVersion: UInt32) {
        self.key = key
        self.keyVersion = keyVersion
    }

    static func associatedData(_ context: FieldContext) -> Data {
        Data(
            "steward.field.v1|\(context.table)|\(context.column)|\(context.rowID.lowercasedString)|\(context.subjectID.lowercasedString)"
                .utf8)
    }

    public func seal(_ plaintext: Data, context: FieldContext) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Self.associatedData(context))
        var out = Data([Self.formatVersion])
        withUnsafeBytes(of: keyVersion.bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: box.nonce)
        out.append(box.ciphertext)
        out.append(box.tag)
        return out
    }

    public func open(_ envelope: Data, context: FieldContext) throws -> Data {
        let bytes = [UInt8](envelope)
        guard bytes.count >= 1 + 4 + 12 + 16, bytes[0] == Self.formatVersion else {
            throw KeyError("not a Steward field envelope")
        }
        let version = bytes[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard version == keyVersion else { throw KeyError("envelope sealed with unknown key version \(version)") }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: bytes[5..<17]), ciphertext: bytes[17..<(bytes.count - 16)],
            tag: bytes[(bytes.count - 16)...])
        return try AES.GCM.open(box, using: key, authenticating: Self.associatedData(context))
    }
}

/// Blind indexes: HMAC-SHA-256 under a per-kind key, truncated to 128 bits (collision-free in
/// practice, half the index size).
public struct HMACBlindIndexer: BlindIndexer {
    /// Keyed HMAC states, one per kind: copying a keyed state skips the key schedule on every look-up.
    let identityMACs: [IdentityKind: HMAC<SHA256>]
    let proofKey: SymmetricKey

    init(root: RootKey) {
        var macs: [IdentityKind: HMAC<SHA256>] = [:]
        for kind in IdentityKind.allCases {
            macs[kind] = HMAC<SHA256>(key: root.derive("steward/v1/blind-index/\(kind.rawValue)"))
        }
        self.identityMACs = macs
        self.proofKey = root.derive("steward/v1/proof-hash")
    }

    public func index(_ identity: NormalizedIdentity) -> Data {
        var mac = identityMACs[identity.kind]!
        var value = identity.value
        value.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return Data(mac.finalize().prefix(16))
    }

    public func proofHash(_ value: String, kind: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(kind)|\(value)".utf8), using: proofKey)
        return Data(mac.prefix(16)).hexString
    }
}

/// `SHA-256(previous ‖ canonical)`.
public struct SHA256AuditSealer: AuditSealer {
    public init() {}
    public func seal(previousHash: Data, canonical: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: previousHash)
        hasher.update(data: canonical)
        return Data(hasher.finalize())
    }
}

/// SHA-256 of a high-entropy secret (≥ 256 bits): no salt or stretching is needed for such inputs.
public struct SHA256SecretDigest: SecretDigest {
    public init() {}
    public func digest(_ secret: String) -> Data { Data(SHA256.hash(data: Data(secret.utf8))) }
}
