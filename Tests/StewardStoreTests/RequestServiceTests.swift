import Foundation
import StewardCore
import StewardPolicy
import StewardServices
import StewardTesting
import Testing

/// Data subject requests stored and stepped through their lifecycle (issue 18 items 1–2), on the
/// backend `Scripts/test.sh` selects: each step one transaction with its audit entry; refused steps
/// change nothing; the person's identities resolve to one subject and never reach the request row
/// or the audit log.
@Suite struct RequestStorage {
    static let regimes: [Regime] = {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Policies").path
        return try! RequestsLoader.load(directory: directory)
    }()

    @Test func intakeStepsExtensionsAndListsPersist() async throws {
        try await withHarness { h in
            let service = RequestService(store: h.store, crypto: h.crypto, runtime: h.runtime, regimes: Self.regimes)
            let email = try NormalizedIdentity(kind: .email, raw: "Ada@Example.com")
            let erasure = try await service.submit(
                regime: "gdpr", type: .erasure, identities: [email], actor: "key:privacy-desk")
            #expect(erasure.status == .received && erasure.verification == nil)
            #expect(try await service.request(erasure.id) == erasure, "read back as written")

            // The same person again, now also by phone: the same subject.
            let phone = try NormalizedIdentity(kind: .phone, raw: "+44 7700 900123")
            let access = try await service.submit(
                regime: "gdpr", type: .access, identities: [phone, email], verified: .preVerified, actor: "key:shop")
            #expect(access.subjectID == erasure.subjectID)
            #expect(access.status == .verified)

            // CCPA opt-out: no verification, approved by the shipped rule at intake (this service
            // records no consent, so it stays approved).
            let optOut = try await service.submit(
                regime: "ccpa", type: .optOutSale, identities: [phone], actor: "key:shop")
            #expect(optOut.status == .approved && optOut.verification == .notRequired)

            // The erasure must be verified before it is approved; a refused step changes nothing.
            await #expect {
                try await service.apply(.approve, to: erasure.id, actor: "officer")
            } throws: {
                ($0 as? StewardError)?.code == .requestInvalidTransition
                    && ($0 as? StewardError)?.detail == "a received request cannot approve"
            }
            #expect(try await service.request(erasure.id).status == .received)
            _ = try await service.apply(.verify(.token), to: erasure.id, actor: "subject")
            let ready = try await service.apply(.approve, to: erasure.id, actor: "officer")
            #expect(ready.status == .approved && ready.verification == .token)

            // An extension: three months from receipt, once.
            let extended = try await service.extend(erasure.id, reason: "many systems", actor: "officer")
            #expect(extended.deadlines.dueOn > erasure.deadlines.dueOn)
            #expect(extended.deadlines.extensionReason == "many systems")
            #expect(try await service.request(erasure.id).deadlines == extended.deadlines)
            await #expect {
                try await service.extend(erasure.id, reason: "again", actor: "officer")
            } throws: { ($0 as? StewardError)?.code == .requestAlreadyExtended }

            // Denied: terminal, with its reason and finish time.
            let denied = try await service.apply(.deny(.unverifiable), to: access.id, actor: "officer")
            #expect(denied.status == .denied && denied.denial == .unverifiable && denied.finishedAt != nil)

            // Lists: most urgent first, filtered, paged.
            let all = try await service.list(RequestFilter())
            #expect(all.count == 3)
            #expect(all.map(\.deadlines.due) == all.map(\.deadlines.due).sorted())
            #expect(try await service.list(RequestFilter(statuses: [.denied])).map(\.id) == [access.id])
            #expect(try await service.list(RequestFilter(regime: "ccpa")).map(\.id) == [optOut.id])
            #expect(try await service.list(RequestFilter(type: .erasure)).map(\.id) == [erasure.id])
            let first = try await service.list(RequestFilter(limit: 1))
            let rest = try await service.list(RequestFilter(after: first.first?.id, limit: 10))
            #expect((first + rest).map(\.id) == all.map(\.id))
            // Overdue: due before a moment past every deadline.
            h.clock.advance(by: 200 * 86_400)
            #expect(try await service.list(RequestFilter(dueBefore: h.clock.now)).count == 3)
            #expect(try await service.list(RequestFilter(dueBefore: erasure.receivedAt)).isEmpty)

            // Identities of two different subjects are refused, and nothing is written.
            let other = try NormalizedIdentity(kind: .email, raw: "grace@example.com")
            let graces = try await service.submit(regime: "gdpr", type: .access, identities: [other], actor: "x")
            #expect(graces.subjectID != erasure.subjectID)
            let before = try await service.list(RequestFilter()).count
            await #expect {
                try await service.submit(regime: "gdpr", type: .erasure, identities: [email, other], actor: "x")
            } throws: {
                ($0 as? StewardError)?.code == .identityBelongsToOtherSubject
                    && ($0 as? StewardError)?.field == "identities"
            }
            #expect(try await service.list(RequestFilter()).count == before)

            // Unknown regime, ungranted type, unknown id.
            await #expect {
                try await service.submit(regime: "lgpd", type: .access, identities: [email], actor: "x")
            } throws: { ($0 as? StewardError)?.code == .requestUnknownRegime }
            await #expect {
                try await service.submit(regime: "gdpr", type: .optOutSale, identities: [email], actor: "x")
            } throws: { ($0 as? StewardError)?.code == .requestTypeNotGranted }
            await #expect {
                try await service.apply(.cancel, to: UUID(), actor: "x")
            } throws: { ($0 as? StewardError)?.code == .requestNotFound }

            // Every change audited, in order; the chain verifies; no identity in it.
            let entries = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
            #expect(
                entries.map(\.draft.action).filter { $0.hasPrefix("request.") } == [
                    "request.received", "request.received", "request.received", "request.approve", "request.verify",
                    "request.approve", "request.extended", "request.deny", "request.received",
                ])
            let text = entries.map { "\($0.draft)" }.joined()
            #expect(!text.lowercased().contains("ada@example.com") && !text.contains("7700"))
            #expect(try await h.audit.verify(store: h.store).isIntact)
        }
    }
}
