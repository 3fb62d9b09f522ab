import Foundation
import StewardCore
import StewardCrypto
import StewardPolicy
import StewardServices
import Testing

@Suite struct IdentityNormalization {
    @Test(arguments: [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("ZO\u{0065}\u{0301}@example.com", "zo\u{00E9}@example.com"),
    ])
    func emailIsTrimmedNFCAndLowercased(raw: String, expected: String) throws {
        #expect(try NormalizedIdentity(kind: .email, raw: raw).value == expected)
    }

    @Test(arguments: ["", "no-at", "a@b", "a@@b.com", "@example.com", "a b@example.com", "a@example..com"])
    func invalidEmailsAreRejectedWithoutEchoingTheValue(raw: String) {
        #expect(throws: StewardError.self) { try NormalizedIdentity(kind: .email, raw: raw) }
        do {
            _ = try NormalizedIdentity(kind: .email, raw: raw)
        } catch {
            #expect(error.code.rawValue == "identity.invalid_email")
            #expect(error.field == "email")
            if !raw.isEmpty { #expect(!error.detail.contains(raw)) }
        }
    }

    @Test(arguments: [
        ("+1 (415) 555-0123", "+14155550123"), ("0049 30 1234567", "+49301234567"),
        ("+44.20.7946.0958", "+442079460958"),
    ])
    func phonesBecomeE164(raw: String, expected: String) throws {
        #expect(try NormalizedIdentity(kind: .phone, raw: raw).value == expected)
    }

    @Test(arguments: ["4155550123", "+0123456789", "+12", "+1415555012345678", "+1-415-CALL-NOW"])
    func impossiblePhonesGiveAClearError(raw: String) {
        do {
            _ = try NormalizedIdentity(kind: .phone, raw: raw)
            Issue.record("accepted \(raw)")
        } catch {
            #expect(error.code.rawValue == "identity.invalid_phone")
            #expect(error.detail.contains("E.164") || error.detail.contains("digits"))
        }
    }
}

@Suite struct ConsentRuleMatrix {
    let optIn = Purpose(
        key: "m", description: "", legalBasis: .consent, mechanism: .optIn, validity: .init(amount: 13, unit: .month))
    let optOut = Purpose(key: "s", description: "", legalBasis: .consent, mechanism: .optOut, saleOrSharing: true)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func state(_ status: ConsentStatus, expires: Date? = nil) -> ConsentState {
        ConsentState(
            subjectID: UUID(), purpose: "m", status: status, eventID: UUID(), decidedAt: now, expiresAt: expires)
    }

    @Test func unknownSubjectIsDeniedForOptInAndAllowedForOptOut() {
        #expect(ConsentRules.check(purpose: optIn, state: nil, now: now).allowed == false)
        #expect(ConsentRules.check(purpose: optOut, state: nil, now: now).allowed == true)
        #expect(ConsentRules.check(purpose: optIn, state: nil, now: now).status == .none)
    }

    @Test(arguments: [
        (ConsentStatus.granted, true, true), (.pending, false, true), (.denied, false, false),
        (.withdrawn, false, false),
    ])
    func statusDecides(status: ConsentStatus, optInAllowed: Bool, optOutAllowed: Bool) {
        #expect(ConsentRules.check(purpose: optIn, state: state(status), now: now).allowed == optInAllowed)
        #expect(ConsentRules.check(purpose: optOut, state: state(status), now: now).allowed == optOutAllowed)
    }

    @Test func grantExpiresAtItsValidity() {
        let expiry = optIn.validity!.added(to: now)
        let granted = state(.granted, expires: expiry)
        #expect(ConsentRules.check(purpose: optIn, state: granted, now: expiry.addingTimeInterval(-1)).allowed)
        let after = ConsentRules.check(purpose: optIn, state: granted, now: expiry)
        #expect(after.allowed == false)
        #expect(after.status == .expired)
    }

    @Test func thirteenMonthsIsCalendarArithmetic() {
        let start = ISO8601DateFormatter().date(from: "2026-01-31T00:00:00Z")!
        let end = CalendarPeriod(parsing: "13 months")!.added(to: start)
        #expect(ISO8601DateFormatter().string(from: end) == "2027-02-28T00:00:00Z")
        #expect(CalendarPeriod(parsing: "13 moons") == nil)
        #expect(CalendarPeriod(parsing: "0 days") == nil)
    }

    @Test func doubleOptInGrantIsPendingUnlessAlreadyConfirmed() {
        var purpose = optIn
        purpose.doubleOptIn = true
        #expect(
            ConsentRules.statusAfter(decision: .granted, method: .webForm, purpose: purpose, current: nil, now: now)
                == (.pending, true))
        let confirmed = state(.granted, expires: now.addingTimeInterval(100))
        #expect(
            ConsentRules.statusAfter(
                decision: .granted, method: .webForm, purpose: purpose, current: confirmed, now: now) == (
                    .granted, false
                ))
        #expect(
            ConsentRules.statusAfter(decision: .withdrawn, method: .api, purpose: purpose, current: confirmed, now: now)
                == (.withdrawn, false))
    }

    @Test func gpcWithdrawsGrantsAndDeniesTheUndecided() {
        #expect(ConsentRules.gpcDecision(current: nil, now: now) == .denied)
        #expect(ConsentRules.gpcDecision(current: state(.granted), now: now) == .withdrawn)
        #expect(ConsentRules.gpcDecision(current: state(.denied), now: now) == nil)
    }
}

@Suite struct PolicyValidation {
    static let shippedDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Policies").path

    @Test func shippedPoliciesAreValid() throws {
        let policy = try PolicyLoader.load(directory: Self.shippedDirectory) { _ in "x" }
        #expect(policy.purposes["marketing.email"]?.doubleOptIn == true)
        #expect(policy.purposes.values.contains { $0.saleOrSharing })
        #expect(!policy.notices.isEmpty)
    }

    @Test func everyIssueNamesFileLineKeyPathAndReason() throws {
        let yaml = """
            version: 1
            purposes:
              - key: marketing.email
                description: x
                legal_basis: consnt
                mechanism: opt_in
              - key: Bad Key
                description: y
                legal_basis: consent
                mechanism: opt_in
                validity: 13 moons
                colour: blue
            notices: []
            """
        do {
            _ = try PolicyLoader.parse(purposesYAML: Data(yaml.utf8), file: "purposes.yaml", digest: "")
            Issue.record("invalid policy accepted")
        } catch let error as PolicyError {
            let text = error.issues.map(\.description)
            #expect(text.contains { $0.hasPrefix("purposes.yaml:5: purposes[0].legal_basis: unknown value 'consnt'") })
            #expect(text.contains { $0.hasPrefix("purposes.yaml:7: purposes[1].key:") })
            #expect(text.contains { $0.hasPrefix("purposes.yaml:11: purposes[1].validity:") })
            #expect(text.contains { $0.hasPrefix("purposes.yaml:12: purposes[1].colour: unknown key") })
        }
    }

    @Test func syntaxErrorsCarryALine() {
        do {
            _ = try PolicyLoader.parse(purposesYAML: Data("version: 1\npurposes: [\n".utf8), file: "p.yaml", digest: "")
            Issue.record("accepted broken YAML")
        } catch let error as PolicyError {
            #expect(error.issues.first?.line != nil)
            #expect(error.issues.first?.reason.hasPrefix("YAML syntax") == true)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Suite struct Envelopes {
    @Test func ciphertextMovedToAnotherRowOrSubjectFailsToOpen() throws {
        let suite = try RootKey(bytes: Data(repeating: 7, count: 32)).suite()
        let row = UUID()
        let subject = UUID()
        let context = FieldContext(table: "identities", column: "value", rowID: row, subjectID: subject)
        let sealed = try suite.cipher.seal(Data("alice@example.com".utf8), context: context)
        #expect(try suite.cipher.open(sealed, context: context) == Data("alice@example.com".utf8))
        var moved = context
        moved.rowID = UUID()
        #expect(throws: (any Error).self) { try suite.cipher.open(sealed, context: moved) }
        moved = context
        moved.subjectID = UUID()
        #expect(throws: (any Error).self) { try suite.cipher.open(sealed, context: moved) }
        var flipped = sealed
        flipped[flipped.count - 1] ^= 1
        #expect(throws: (any Error).self) { try suite.cipher.open(flipped, context: context) }
    }

    @Test func blindIndexesAreKeyedAndPerKind() throws {
        let a = try RootKey(bytes: Data(repeating: 1, count: 32)).suite().indexer
        let b = try RootKey(bytes: Data(repeating: 2, count: 32)).suite().indexer
        let email = try NormalizedIdentity(kind: .email, raw: "a@example.com")
        let external = try NormalizedIdentity(kind: .externalId, raw: "a@example.com")
        #expect(a.index(email).count == 16)
        #expect(a.index(email) == a.index(try NormalizedIdentity(kind: .email, raw: " A@Example.com")))
        #expect(a.index(email) != b.index(email))
        #expect(a.index(email) != a.index(external))
    }

    @Test func rootKeyFilesMustBePrivate() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("root-\(UUID()).key").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try RootKey.generate(file: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o400)
        _ = try RootKey.load(file: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: KeyError.self) { try RootKey.load(file: path) }
    }
}

@Suite struct TextForms {
    /// The audit chain hashes UUID text: the hand-written formatter must match Foundation's exactly.
    @Test func lowercasedUUIDMatchesFoundation() {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
        }
    }

    @Test func auditDetailsEncodeAsSortedJSONAndRoundTrip() throws {
        let details = ["z": "last", "a": "quote \" backslash \\ newline \n tab \t bell \u{07} é", "m": ""]
        let text = AuditDetailsCoding.encode(details)
        #expect(text.hasPrefix("{\"a\":"))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)) == details)
        #expect(AuditDetailsCoding.decode(text) == details)
        #expect(AuditDetailsCoding.encode([:]) == "{}")
    }
}

@Suite struct TimeOrderedIDs {
    @Test func version7IdsCarryTheirMillisecondAndSortByIt() {
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        var generator = KernelRandomPool().generator
        let ids = (0..<200).map { UUID.version7(at: base.addingTimeInterval(Double($0) / 100), using: &generator) }
        let texts = ids.map(\.lowercasedString)
        #expect(texts.allSatisfy { $0[$0.index($0.startIndex, offsetBy: 14)] == "7" })
        #expect(texts.allSatisfy { "89ab".contains($0[$0.index($0.startIndex, offsetBy: 19)]) })
        #expect(Set(ids).count == ids.count)
        // Ids from different milliseconds sort by time.
        for (earlier, later) in zip(texts, texts.dropFirst()) { #expect(earlier < later) }
        #expect(texts[0].hasPrefix("01a0c"))  // 1_790_000_000_000 ms = 0x01a0c…
    }

    @Test func thePooledKernelRandomnessNeverRepeatsAcrossRefills() async {
        // 20,000 ids draw 320,000 bytes: about eighty refills of the 4 KiB pool, from two tasks.
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        let pool = KernelRandomPool()
        let runtime = Runtime.live(random: pool)
        let ids = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var generator = pool.generator
                    return (0..<10_000).map { _ in UUID.version7(at: base, using: &generator) }
                }
            }
            return await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(Set(ids).count == 20_000)
        let bytes = runtime.randomBytes(4_096 + 100)
        #expect(bytes.count == 4_196)
        #expect(Set(bytes).count > 200)  // all 256 values are expected; zeros would mean a consumed, wiped pool
        #expect(runtime.randomBytes(32) != runtime.randomBytes(32))
    }
}

@Suite struct TimestampText {
    @Test func iso8601MatchesFoundationAcrossEras() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        // From 1583 on: before the Gregorian reform Foundation switches to the Julian calendar, while
        // RFC 3339 (and this formatter) use the proleptic Gregorian calendar.
        let fixed: [Double] = [
            0, -1, 951_782_400.5, 4_102_444_799.999, -12_219_292_800, 1_790_000_000.123, 1_790_000_000.9996,
        ]
        let random = (0..<2_000).map { _ in
            Double(Int64.random(in: -2_000_000_000_000...8_000_000_000_000, using: &generator)) / 1_000
        }
        for seconds in fixed + random {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamp.iso8601(date) == formatter.string(from: date), "\(seconds)")
        }
    }

    @Test func asciiTrimMatchesFoundation() throws {
        for raw in ["  a@example.com\t\n", "a@example.com", " \u{0B}x@example.com\r", "   "] {
            let expected = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if expected.isEmpty { continue }
            #expect(try NormalizedIdentity(kind: .externalId, raw: raw).value == expected)
        }
    }
}

/// The audit chain hashes these exact bytes: a stored chain verifies only while they never change.
@Suite struct AuditCanonicalForm {
    @Test func canonicalBytesAndDetailsTextAreFixed() {
        let draft = AuditDraft(
            actor: "key:0190", action: "consent.recorded", targetType: "consent_event",
            targetID: "01a20b29-777e-747c-aefb-33e66bd89574", outcome: "success",
            details: ["purpose": "marketing.email", "decision": "granted", "note": "a \"quoted\"\\ line\n", "z": ""])
        let bytes = AuditEntry.canonicalBytes(
            sequence: 1_234_567, id: UUID(uuidString: "01A20B29-777E-7DEC-889C-49586B8BFAEF")!,
            at: Date(timeIntervalSince1970: 1_795_483_596.855978), draft: draft)
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"16:steward.audit.v17:123456736:01a20b29-777e-7dec-889c-49586b8bfaef16:17954835968559788:key:019016:consent.recorded13:consent_event36:01a20b29-777e-747c-aefb-33e66bd895747:success1:48:decision7:granted4:note17:a "quoted"\ line\#n7:purpose15:marketing.email1:z0:"#
        )
        #expect(
            AuditDetailsCoding.encode(draft.details)
                == #"{"decision":"granted","note":"a \"quoted\"\\ line\n","purpose":"marketing.email","z":""}"#)
        #expect(AuditDetailsCoding.encode([:]) == "{}")
        let negative = AuditEntry.canonicalBytes(
            sequence: -5, id: UUID(uuidString: "00000000-0000-0000-0000-000000000000")!,
            at: Date(timeIntervalSince1970: -1), draft: AuditDraft(actor: "", action: "", targetType: "", targetID: ""))
        #expect(
            String(decoding: negative, as: UTF8.self)
                == #"16:steward.audit.v12:-536:00000000-0000-0000-0000-0000000000008:-10000000:0:0:0:7:success1:0"#)
    }
}
