import Foundation
import StewardCore
import StewardServices
import StewardTesting
import Testing

/// Issue 15's defects that live below the HTTP edge, on every backend: each of these failed before
/// its fix.
@Suite struct Hardening {
    /// Defect 4: a name of 100 graphemes that is more than 100 code points passed the check and hit
    /// the database's CHECK (a 500; `SQLite error 275` from the CLI).
    @Test func keyNamesAreCountedInCodePointsAsTheDatabasesCount() async throws {
        try await withHarness { h in
            for name in [String(repeating: "e\u{0301}", count: 100), String(repeating: "👨‍👩‍👧‍👦", count: 60)] {
                #expect(name.count <= 100 && name.unicodeScalars.count > 100)
                let error = await #expect(throws: StewardError.self) {
                    try await h.keys.create(name: name, role: .service, actor: "test")
                }
                #expect(error?.code.rawValue == "key.invalid_name" && error?.field == "name")
            }
            // Exactly 100 code points is fine, emoji joiners included.
            let fits = String(repeating: "👨‍👩‍👧‍👦", count: 14) + String(repeating: "x", count: 2)
            #expect(fits.unicodeScalars.count == 100)
            _ = try await h.keys.create(name: fits, role: .service, actor: "test")
        }
    }

    /// Defect 5: control and invisible characters in ids, emails and names.
    @Test func controlAndInvisibleCharactersAreRefusedInEveryTextField() throws {
        for kind in [IdentityKind.externalId, .deviceId] {
            for raw in ["cust\u{0}42", "cust\u{1B}[31m42", "cust\u{200B}42", "cust\u{202E}24", "cust\u{FFFD}42"] {
                let error = #expect(throws: StewardError.self) { try NormalizedIdentity(kind: kind, raw: raw) }
                #expect(error?.field == kind.parameterName)
                #expect(error?.code.rawValue.hasPrefix("text.") == true, "\(error?.code.rawValue ?? "-")")
            }
            #expect(try NormalizedIdentity(kind: kind, raw: "  cust-42  ").value == "cust-42")
        }
        for raw in [
            "al\u{200B}ice@example.com", "alice@exa\u{202E}moc.elpmaxe", "\u{FEFF}alice@example.com",
            "al\u{FFFD}ce@example.com", "ali\u{85}ce@example.com",
        ] {
            let error = #expect(throws: StewardError.self) { try NormalizedIdentity(kind: .email, raw: raw) }
            #expect(error?.code.rawValue == "identity.invalid_email")
        }
        #expect(try NormalizedIdentity(kind: .email, raw: "Zoë@Exämple.com").value == "zoë@exämple.com")
        #expect(throws: StewardError.self) {
            try FreeText.check("a\u{2066}b", field: "name", maxLength: 100, lengthCode: .keyInvalidName)
        }
        // Joiners are part of emoji and some scripts: allowed in names, never in identifiers.
        try FreeText.check("👩‍💻 team", field: "name", maxLength: 100, lengthCode: .keyInvalidName)
        #expect(throws: StewardError.self) {
            try FreeText.check(
                "a\u{200D}b", field: "externalId", maxLength: 100, kind: .identifier, lengthCode: .keyInvalidName)
        }
    }

    /// Defect 6: a grant of sale sent with `Sec-GPC: 1` was recorded as granted and checked allowed.
    @Test func theGPCSignalWinsOverAGrantOfSaleSentWithIt() async throws {
        try await withHarness { h in
            let person = Fixtures.email("gpc-grant@example.com")
            let outcome = try await h.consent.record(Fixtures.decide(person, "sale", .granted, gpc: true))
            #expect(outcome.event.decision == .granted)  // what the site sent stays in the ledger
            #expect(outcome.state.status != .granted)
            #expect(outcome.gpcEvents.contains { $0.purpose == "sale" && $0.method == .gpc })
            let check = try await h.consent.check(person, purpose: "sale")
            #expect(check.allowed == false && check.status == .withdrawn)
            // Without the signal a grant of sale stands.
            let other = Fixtures.email("no-gpc@example.com")
            _ = try await h.consent.record(Fixtures.decide(other, "sale", .granted))
            #expect(try await h.consent.check(other, purpose: "sale").allowed)
        }
    }

    /// Defect 7: a pending grant's token confirmed after its subject was merged answered 409.
    @Test func aConfirmationFollowsItsGrantThroughAMerge() async throws {
        try await withHarness { h in
            let byEmail = try await h.consent.record(
                Fixtures.decide(Fixtures.email("merge-a@example.com"), "analytics", .denied))
            let pending = try await h.consent.record(
                Fixtures.grant(Fixtures.email("merge-b@example.com"), "marketing.email"))
            let token = try #require(pending.confirmationToken)
            _ = try await h.subjects.merge(source: pending.subjectID, into: byEmail.subjectID, actor: "test")
            let confirmed = try await h.consent.confirm(token: token, actor: "test")
            #expect(confirmed.subjectID == byEmail.subjectID)
            #expect(confirmed.event.confirms == pending.event.id)
            for email in ["merge-a@example.com", "merge-b@example.com"] {
                #expect(try await h.consent.check(Fixtures.email(email), purpose: "marketing.email").allowed)
            }
            // A grant the survivor's own later decision replaced stays superseded.
            let late = try await h.consent.record(
                Fixtures.grant(Fixtures.email("merge-c@example.com"), "marketing.email"))
            let lateToken = try #require(late.confirmationToken)
            h.clock.advance(by: 1)
            _ = try await h.consent.record(
                Fixtures.decide(Fixtures.email("merge-a@example.com"), "marketing.email", .withdrawn))
            _ = try await h.subjects.merge(source: late.subjectID, into: byEmail.subjectID, actor: "test")
            let superseded = await #expect(throws: StewardError.self) {
                try await h.consent.confirm(token: lateToken, actor: "test")
            }
            #expect(superseded?.code.rawValue == "confirmation.superseded")
        }
    }
}
