import Foundation
import StewardCore
import StewardCrypto
import StewardPolicy
@_spi(Testing) import StewardSQLite
import StewardServices
import StewardTesting
import Testing

/// A database written by an earlier Steward opens with this one: `Tests/Fixtures/schema-v2.sqlite` was
/// made by the schema-2 release (text ids) with `Tests/Fixtures/make-schema-v2.sh`.
@Suite(.enabled(if: TestBackend.current == .sqlite)) struct SQLiteMigration {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// The root key the fixture script used.
    static let rootKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    @Test func schemaTwoMigratesToBinaryIdsWithEverythingIntact() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "steward-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("steward.sqlite").path
        try FileManager.default.copyItem(
            atPath: Self.fixtures.appendingPathComponent("schema-v2.sqlite").path, toPath: path)

        let store = try SQLiteStore(path: path)
        let applied = try await store.migrate()
        #expect(applied == 10)  // versions 3 to 12
        let again = try await store.migrate()
        #expect(again == 0)

        let policy = try PolicyLoader.load(
            directory: Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                "Policies"
            ).path
        ) { _ in "fixture" }
        let crypto = try RootKey(base64: Self.rootKey).suite()
        let clock = ManualClock(Date(timeIntervalSince1970: 1_796_083_200))  // 2026-12-01, after the fixture was made
        let pool = KernelRandomPool()
        let runtime = Runtime(
            now: { clock.now },
            newID: {
                var generator = pool.generator
                return UUID.version7(at: clock.now, using: &generator)
            }, randomBytes: Runtime.live(random: pool).randomBytes)
        let consent = ConsentService(store: store, crypto: crypto, policy: policy, runtime: runtime)
        let audit = AuditLog(sealer: crypto.sealer, runtime: runtime)

        // The hash chain covers each entry's id: it verifies only if every id converted exactly.
        let verification = try await audit.verify(store: store)
        #expect(verification.isIntact)
        #expect(verification.checked == 16)

        // Double opt-in confirmed before the migration: still allowed, found through the blind index.
        let ada = Fixtures.email("ada@example.com")
        let newsletter = try await consent.check(ada, purpose: "marketing.email")
        #expect(newsletter.allowed && newsletter.status == .granted)

        // The phone's subject was merged into the externalId's; the device id was linked to it.
        let grace = try await consent.subjectID(.identity(try NormalizedIdentity(kind: .externalId, raw: "cus_42")))
        let viaPhone = try await consent.subjectID(
            .identity(try NormalizedIdentity(kind: .phone, raw: "+1 415 555 0100")))
        let viaDevice = try await consent.subjectID(.identity(try NormalizedIdentity(kind: .deviceId, raw: "device-7")))
        #expect(viaPhone == grace && viaDevice == grace)
        let sale = try await consent.check(.id(grace), purpose: "sale")
        #expect(sale.allowed == false && sale.status == .denied)
        let history = try await consent.history(subjectID: grace, after: 0, limit: 50)
        #expect(history.events.count == 4)
        #expect(history.events.map(\.ordinal) == [1, 2, 3, 4])

        // Sealed identity values open: their AAD binds the row and subject ids, so a wrong byte fails.
        let identities = try await store.read { try await $0.identities(subjectID: grace) }
        #expect(identities.count == 3)
        let values = try identities.map { identity in
            String(
                decoding: try crypto.cipher.open(
                    identity.ciphertext,
                    context: FieldContext(table: "identities", column: "value", rowID: identity.id, subjectID: grace)),
                as: UTF8.self)
        }
        #expect(Set(values) == ["cus_42", "+14155550100", "device-7"])

        let keys = try await KeyService(store: store, crypto: crypto, runtime: runtime).list()
        #expect(keys.count == 2 && keys.filter { $0.revokedAt != nil }.count == 1)

        // The migrated database takes new writes, and the chain goes on from the migrated head.
        let withdrawn = try await consent.record(Fixtures.decide(ada, "marketing.email", .withdrawn))
        #expect(withdrawn.event.ordinal == 4)
        #expect(try await consent.check(ada, purpose: "marketing.email").allowed == false)
        let after = try await audit.verify(store: store)
        #expect(after.isIntact && after.checked == 17)
    }

    /// Migration 4 rewrites the enumerated CHECK constraints without IN lists: inserts no longer build
    /// a temporary B-tree per execution, and the constraints still refuse the same values.
    @Test func enumeratedChecksBuildNoTemporaryTables() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "steward-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("steward.sqlite").path)
        try await store.migrate()

        let inserts = [
            "INSERT INTO identities (id, subject_id, kind, blind_index, ciphertext, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            """
            INSERT INTO consent_events (id, subject_id, ordinal, purpose, decision, status, method, actor, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            """
            INSERT INTO consent_state (subject_id, purpose, status, event_id, decided_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (subject_id, purpose) DO UPDATE SET status = excluded.status
            """,
        ]
        for insert in inserts {
            let opcodes = try await store.unsafeQuery("EXPLAIN " + insert, column: 1)
            #expect(opcodes.contains("Insert") || opcodes.contains("IdxInsert"))
            #expect(!opcodes.contains("OpenEphemeral"), "\(insert.prefix(40)) builds a temporary table")
        }

        // The constraints still hold: a status outside the enumeration is refused, a listed one is not.
        let subject = "x'0102030405060708090a0b0c0d0e0f10'"
        let event = "x'1112131415161718191a1b1c1d1e1f20'"
        try await store.unsafeExecute("INSERT INTO subjects (id, created_at) VALUES (\(subject), 0)")
        // The accepted row goes last: it takes the event id the refused ones would have used.
        for (decision, status, accepted) in [
            ("granted", "revoked", false), ("maybe", "granted", false), ("granted", "pending", true),
        ] {
            var inserted = true
            do {
                try await store.unsafeExecute(
                    """
                    INSERT INTO consent_events (id, subject_id, ordinal, purpose, decision, status, method, actor,
                        recorded_at)
                    VALUES (\(event), \(subject), 1, 'analytics', '\(decision)', '\(status)', 'api', 'test', 0)
                    """)
            } catch {
                inserted = false
            }
            #expect(inserted == accepted, "\(decision)/\(status)")
        }
        await #expect(throws: (any Error).self) {
            try await store.unsafeExecute(
                "INSERT INTO consent_state (subject_id, purpose, status, event_id, decided_at) VALUES (\(subject), 'analytics', 'bogus', \(event), 0)"
            )
        }
        await #expect(throws: (any Error).self) {
            try await store.unsafeExecute(
                "INSERT INTO identities (id, subject_id, kind, blind_index, ciphertext, created_at) VALUES (\(event), \(subject), 'fax', x'00000000000000000000000000000000', x'00', 0)"
            )
        }
    }
}
