public import Foundation
public import StewardCore

/// Errors a store raises that the services act on; anything else is an opaque failure.
public enum StoreError: Error, Sendable, Equatable {
    /// A UNIQUE constraint was hit: a concurrent writer got there first; the transaction may be retried.
    case uniqueViolation
    /// The database aborted the transaction to resolve a conflict with a concurrent one (a deadlock
    /// or a serialization failure); nothing of it was applied, and it may be retried.
    case conflict
    /// The database could not be reached or answered with an error; no detail with personal data.
    case unavailable(String)
    /// A value read back is not one the schema allows (a state, a decision, a role): never read as a
    /// default, refused, logged and counted. The detail names the table and column, never the value.
    case integrity(String)
}

/// Reads of the store: every role's reads, over one connection or snapshot. Implementations are
/// backend specific, one file per role in each adapter (`SQLiteSession+Subjects.swift`, …); the
/// contract suite in StewardTesting holds every implementation to the same behaviour. A use case
/// asks for the narrowest role it needs (`any AuditWriting`, `any SubjectReading`), so what it may
/// touch is visible in its signature.
public protocol StoreReader: SubjectReading, ConsentLedgerReading, APIKeyReading, AuditReading, SettingsReading,
    JobQueueReading, RequestReading, RequestTaskReading
{}

/// Writes, inside one transaction (`StewardStore.write { transaction in … }`) that spans every role:
/// a consent event, its subject and its audit entry commit together or not at all.
public protocol StoreTransaction: StoreReader, SubjectWriting, ConsentLedgerWriting, APIKeyWriting, AuditWriting,
    SettingsWriting, JobQueueWriting, RequestWriting, RequestTaskWriting
{}

/// The database behind Steward: SQLite embedded, or PostgreSQL for many instances.
public protocol StewardStore: Sendable {
    /// `sqlite` or `postgres`, for logs and test output.
    var backendName: String { get }
    /// Applies pending numbered migrations; returns how many were applied.
    @discardableResult func migrate() async throws -> Int
    /// Succeeds when the database answers a trivial query.
    func ping() async throws
    /// What the database holds, read without writing or migrating (`KeyBinding` decides with it
    /// whether a key may be used before anything is written).
    func inventory() async throws -> StoreInventory
    /// Periodic housekeeping off the request path (SQLite: checkpoint the WAL into the database so
    /// commits never pay for it). Called about once a second by `StoreMaintenance`.
    func maintain() async throws
    /// Reads the consent-check structures once, off the request path, so the checks after a start do
    /// not wait on the disk one random page at a time. Returns the rows read, or nil when the backend
    /// leaves caching to its database server (PostgreSQL: shared buffers, `pg_prewarm`). Stops early
    /// when the calling task is cancelled.
    func warm() async throws -> Int?
    func read<T: Sendable>(_ body: @Sendable (any StoreReader) async throws -> T) async throws -> T
    /// Runs `body` in one transaction: all of it commits, or none.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws -> T
    /// Hot path: the subject an identity belongs to, with every current state, in one indexed read;
    /// nil when no subject holds the identity.
    func subjectStates(kind: IdentityKind, blindIndex: Data) async throws -> SubjectStates?
    /// Calls `observer` after each committed write that changed a consent check's answer, with what
    /// it changed (this instance's cache is made current before the write is acknowledged).
    func observeAnswerChanges(_ observer: @escaping @Sendable ([AnswerChange]) -> Void)
    /// The change feed (ADR 0013): what committed writes changed after `position`, in commit order,
    /// at most `limit` rows; `position` is where the rows read reach, `complete` false when the
    /// limit cut the read short.
    func answerChanges(after position: Int64, limit: Int) async throws -> AnswerFeedPage
    /// Removes feed rows recorded before `date`.
    func pruneAnswerChanges(before date: Date) async throws
    /// The feed's head: the position of the last committed change.
    func answerFeedPosition() async throws -> Int64
    /// Yields when another instance may have published changes (PostgreSQL NOTIFY); a store with no
    /// such signal finishes at once, and the follower polls.
    func answerWakeups() -> AsyncStream<Void>
    /// Hot path: an API key by the hash of its secret, with the stored hash for a constant-time comparison.
    func apiKey(hash: Data) async throws -> (record: APIKeyRecord, storedHash: Data)?
}

/// Where a sealed field lives; bound into the envelope as associated data so that a ciphertext copied
/// to another row, column or subject fails to open.
public struct FieldContext: Sendable, Hashable {
    public var table: String
    public var column: String
    public var rowID: UUID
    public var subjectID: UUID

    public init(table: String, column: String, rowID: UUID, subjectID: UUID) {
        self.table = table
        self.column = column
        self.rowID = rowID
        self.subjectID = subjectID
    }
}

/// Encrypts personal values at rest (AEAD envelopes bound to their row).
public protocol FieldCipher: Sendable {
    func seal(_ plaintext: Data, context: FieldContext) throws -> Data
    func open(_ envelope: Data, context: FieldContext) throws -> Data
}

/// Keyed one-way indexes and hashes: blind indexes for look-up, proof hashes, token hashes.
public protocol BlindIndexer: Sendable {
    /// The blind index of a normalised identity (keyed HMAC, per-kind key).
    func index(_ identity: NormalizedIdentity) -> Data
    /// A keyed hash of a proof value (IP address, user agent), hex, so equal values can be matched
    /// without the value being stored.
    func proofHash(_ value: String, kind: String) -> String
}

/// Seals audit entries into the chain: `hash = H(previous ‖ canonical)`.
public protocol AuditSealer: Sendable {
    func seal(previousHash: Data, canonical: Data) -> Data
}

/// Hashes high-entropy secrets (API keys, confirmation tokens) for storage.
public protocol SecretDigest: Sendable {
    func digest(_ secret: String) -> Data
}

/// The cryptographic services the use cases need, provided by StewardCrypto.
public struct CryptoSuite: Sendable {
    public var cipher: any FieldCipher
    public var indexer: any BlindIndexer
    public var sealer: any AuditSealer
    public var secrets: any SecretDigest

    public init(cipher: any FieldCipher, indexer: any BlindIndexer, sealer: any AuditSealer, secrets: any SecretDigest)
    {
        self.cipher = cipher
        self.indexer = indexer
        self.sealer = sealer
        self.secrets = secrets
    }
}

/// The world, injected: time, identifiers and randomness. The live values read the clock and the
/// system CSPRNG; tests pass a manual clock.
public struct Runtime: Sendable {
    public var now: @Sendable () -> Date
    public var newID: @Sendable () -> UUID
    public var randomBytes: @Sendable (Int) -> [UInt8]

    public init(
        now: @escaping @Sendable () -> Date, newID: @escaping @Sendable () -> UUID,
        randomBytes: @escaping @Sendable (Int) -> [UInt8]
    ) {
        self.now = now
        self.newID = newID
        self.randomBytes = randomBytes
    }

    /// The real world: the system clock, UUIDv7 ids and bytes from `random`, a kernel random pool
    /// the composition root creates (one per process; tests make their own).
    public static func live(random: KernelRandomPool) -> Runtime {
        Runtime(
            now: { Date() },
            newID: {
                var generator = random.generator
                return UUID.version7(at: Date(), using: &generator)
            },
            randomBytes: { count in
                [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                    random.fill(UnsafeMutableRawBufferPointer(buffer))
                    initialized = count
                }
            })
    }

    /// The current time truncated to whole microseconds, the precision every backend stores.
    public func nowMicros() -> Date { Timestamp.date(micros: Timestamp.micros(now())) }
}

extension UUID {
    /// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids made later sort
    /// later, so new rows append at the right edge of every B-tree keyed by them instead of
    /// dirtying pages all over it (a tenfold write-amplification difference measured on bulk
    /// import). The id reveals its creation millisecond, no more: it is not a secret anywhere.
    public static func version7(at date: Date, using generator: inout some RandomNumberGenerator) -> UUID {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1_000))
        let high = generator.next()
        let low = generator.next()
        func byte(_ value: UInt64, _ shift: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: value >> shift) }
        return UUID(
            uuid: (
                byte(millis, 40), byte(millis, 32), byte(millis, 24), byte(millis, 16), byte(millis, 8),
                byte(millis, 0),
                0x70 | (byte(high, 8) & 0x0F), byte(high, 0),
                0x80 | (byte(low, 56) & 0x3F), byte(low, 48), byte(low, 40), byte(low, 32),
                byte(low, 24), byte(low, 16), byte(low, 8), byte(low, 0)
            ))
    }
}

extension StoreError: CataloguedError {
    /// The catalogued code of a store error, as the HTTP edge answers it.
    public var code: StewardError.Code {
        switch self {
        case .uniqueViolation: .storeUniqueViolation
        case .conflict: .storeBusy
        case .unavailable: .storeUnavailable
        case .integrity: .storeIntegrity
        }
    }

    /// A stored enumeration value read back: one the schema does not allow is an integrity error
    /// naming the column (never the value), not a default — reading an unknown decision as "denied"
    /// or an unknown role as "auditor" would answer on a guess.
    public static func stored<T: RawRepresentable>(_ type: T.Type, _ raw: T.RawValue, column: String) throws -> T {
        guard let value = T(rawValue: raw) else {
            throw StoreError.integrity("\(column) holds a value that is not a \(String(describing: T.self))")
        }
        return value
    }
}
