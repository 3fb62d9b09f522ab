import Foundation
import StewardCore
import StewardCrypto
import StewardServices
import StewardTesting
import Testing

/// The key check on every backend: the inventory a start reads before writing anything, and the
/// decision it takes from it (`KeyBinding`).
@Suite struct KeyBindingContract {
    static func key(_ check: String, _ cipher: any FieldCipher) -> KeyBinding.PresentedKey {
        .init(name: "root", checkValue: check, cipher: cipher, source: "the key file /keys/test.key")
    }

    @Test func aKeyIsBoundOnFirstUseAndAnotherIsRefused() async throws {
        try await withHarness { h in
            let other = try RootKey(bytes: Data(Runtime.live(random: KernelRandomPool()).randomBytes(32))).suite()
                .cipher
            // Migrated, nothing written: any key may be bound, and so may none (a development key).
            let empty = try await h.store.inventory()
            #expect(empty.schemaVersion > 0 && empty.isEmpty && empty.sampleIdentity == nil)
            #expect(try KeyBinding.decide(inventory: empty, key: nil, database: "db", lookedFor: "-") == .empty)

            // Data from before check values: the key that sealed it is adopted; another is refused.
            _ = try await h.consent.record(Fixtures.grant(Fixtures.email("ada@example.com"), "analytics"))
            let legacy = try await h.store.inventory()
            #expect(legacy.holdsData && legacy.keyChecks.isEmpty)
            #expect(legacy.sampleIdentity != nil)
            let right = Self.key("v1:aa", h.crypto.cipher)
            #expect(
                try KeyBinding.decide(inventory: legacy, key: right, database: "db", lookedFor: "-") == .adoptsExisting)
            #expect(throws: KeyBinding.Refusal.self) {
                try KeyBinding.decide(inventory: legacy, key: Self.key("v1:aa", other), database: "db", lookedFor: "-")
            }
            let noKey = #expect(throws: KeyBinding.Refusal.self) {
                try KeyBinding.decide(inventory: legacy, key: nil, database: "the database X", lookedFor: "Y")
            }
            #expect(noKey?.reason == .noKey)
            #expect(noKey?.description.contains("the database X") == true && noKey?.description.contains("Y") == true)

            // Binding records the check value and its audit entry together, once.
            let entriesBefore = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
            #expect(try await KeyBinding.bind(right, store: h.store, audit: h.audit, actor: "system", database: "db"))
            #expect(
                try await KeyBinding.bind(right, store: h.store, audit: h.audit, actor: "system", database: "db")
                    == false)
            let entries = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
            #expect(entries.count == entriesBefore.count + 1)
            #expect(entries.last?.draft.action == "key.bound" && entries.last?.draft.targetID == "root")
            #expect(try await h.audit.verify(store: h.store).isIntact)

            // Bound: the recorded value decides, whatever the cipher says.
            let bound = try await h.store.inventory()
            #expect(bound.keyChecks == ["root": "v1:aa"])
            #expect(try KeyBinding.decide(inventory: bound, key: right, database: "db", lookedFor: "-") == .matches)
            let mismatch = #expect(throws: KeyBinding.Refusal.self) {
                try KeyBinding.decide(
                    inventory: bound, key: Self.key("v1:bb", h.crypto.cipher), database: "the database X",
                    lookedFor: "-")
            }
            #expect(mismatch?.reason == .mismatch)
            #expect(mismatch?.description.contains("/keys/test.key") == true)
            // A second process binding another key meanwhile is refused, not overwritten.
            await #expect(throws: KeyBinding.Refusal.self) {
                try await KeyBinding.bind(
                    Self.key("v1:bb", h.crypto.cipher), store: h.store, audit: h.audit, actor: "system", database: "db")
            }
            #expect(try await h.store.inventory().keyChecks == ["root": "v1:aa"])
        }
    }

    @Test func checkValuesDifferByKeyAndNeverContainIt() throws {
        let bytes = Data(Runtime.live(random: KernelRandomPool()).randomBytes(32))
        let a = try RootKey(bytes: bytes)
        let b = try RootKey(bytes: Data(Runtime.live(random: KernelRandomPool()).randomBytes(32)))
        #expect(a.checkValue == (try RootKey(bytes: bytes)).checkValue)
        #expect(a.checkValue != b.checkValue)
        #expect(a.checkValue.hasPrefix("v1:") && a.checkValue.count == 3 + 32)
        #expect(!a.checkValue.contains(bytes.hexString) && !a.checkValue.contains(bytes.base64EncodedString()))
    }
}
