import Foundation
import Synchronization
import StewardCore
import StewardServices
import StewardTesting
import Testing

/// The store contract: every behaviour here must hold on every backend. `Scripts/test.sh` runs this
/// suite once against SQLite and once against a real PostgreSQL.
@Suite struct StoreContract {
    @Test func recordThenCheckOnTheHotPath() async throws {
        try await withHarness { h in
            let alice = Fixtures.email("Alice@Example.com")
            let outcome = try await h.consent.record(Fixtures.grant(alice, "analytics"))
            #expect(outcome.subjectCreated)
            #expect(outcome.state.status == .granted)
            let check = try await h.consent.check(Fixtures.email(" alice@example.COM"), purpose: "analytics")
            #expect(check.allowed)
            #expect(check.recordID == outcome.event.id)
            #expect(check.basis == .consent)
            let unknown = try await h.consent.check(Fixtures.email("nobody@example.com"), purpose: "analytics")
            #expect(unknown.allowed == false && unknown.status == .none)
            let optOut = try await h.consent.check(Fixtures.email("nobody@example.com"), purpose: "personalization")
            #expect(optOut.allowed)
            let byID = try await h.consent.check(.id(outcome.subjectID), purpose: "analytics")
            #expect(byID.allowed)
        }
    }

    @Test func doubleOptInConfirmWithdrawAndHistory() async throws {
        try await withHarness { h in
            let bob = Fixtures.email("bob@example.com")
            let pending = try await h.consent.record(Fixtures.grant(bob, "marketing.email"))
            #expect(pending.state.status == .pending)
            let token = try #require(pending.confirmationToken)
            #expect(try await h.consent.check(bob, purpose: "marketing.email").allowed == false)
            let confirmed = try await h.consent.confirm(token: token, actor: "test")
            #expect(confirmed.event.confirms == pending.event.id)
            #expect(confirmed.event.method == .doubleOptIn)
            #expect(try await h.consent.check(bob, purpose: "marketing.email").allowed)
            await #expect(throws: StewardError.self) { try await h.consent.confirm(token: token, actor: "test") }
            await #expect(throws: StewardError.self) { try await h.consent.confirm(token: "dc_unknown", actor: "test") }
            _ = try await h.consent.record(Fixtures.decide(bob, "marketing.email", .withdrawn))
            let check = try await h.consent.check(bob, purpose: "marketing.email")
            #expect(check.allowed == false && check.status == .withdrawn)
            let first = try await h.consent.history(subjectID: pending.subjectID, after: 0, limit: 2)
            #expect(first.events.map(\.ordinal) == [1, 2])
            let next = try #require(first.next)
            let second = try await h.consent.history(subjectID: pending.subjectID, after: next, limit: 2)
            #expect(second.events.map(\.status) == [.withdrawn])
            #expect(second.next == nil)
            #expect((first.events + second.events).map(\.status) == [.pending, .granted, .withdrawn])
        }
    }

    @Test func confirmationTokensExpireAndAreSupersededByLaterDecisions() async throws {
        try await withHarness { h in
            let carol = Fixtures.email("carol@example.com")
            let first = try await h.consent.record(Fixtures.grant(carol, "marketing.email"))
            h.clock.advance(by: 8 * 86_400)
            do {
                _ = try await h.consent.confirm(token: first.confirmationToken!, actor: "test")
                Issue.record("expired token accepted")
            } catch let error as StewardError {
                #expect(error.code.rawValue == "confirmation.expired")
            }
            let second = try await h.consent.record(Fixtures.grant(carol, "marketing.email"))
            _ = try await h.consent.record(Fixtures.decide(carol, "marketing.email", .denied))
            do {
                _ = try await h.consent.confirm(token: second.confirmationToken!, actor: "test")
                Issue.record("superseded token accepted")
            } catch let error as StewardError {
                #expect(error.code.rawValue == "confirmation.superseded")
            }
        }
    }

    @Test func consentExpiresAfterThePurposeValidity() async throws {
        try await withHarness { h in
            let dave = Fixtures.email("dave@example.com")
            _ = try await h.consent.record(Fixtures.grant(dave, "analytics"))
            h.clock.advance(by: 29 * 86_400)
            #expect(try await h.consent.check(dave, purpose: "analytics").allowed)
            h.clock.advance(by: 2 * 86_400)
            let check = try await h.consent.check(dave, purpose: "analytics")
            #expect(check.allowed == false)
            #expect(check.status == .expired)
        }
    }

    @Test func globalPrivacyControlOptsOutOfEverySaleOrSharingPurpose() async throws {
        try await withHarness { h in
            let erin = Fixtures.email("erin@example.com")
            _ = try await h.consent.record(Fixtures.grant(erin, "sale"))
            let outcome = try await h.consent.record(Fixtures.decide(erin, "analytics", .granted, gpc: true))
            #expect(Set(outcome.gpcEvents.map(\.purpose)) == ["sale", "sharing.ads"])
            #expect(outcome.gpcEvents.allSatisfy { $0.method == .gpc })
            #expect(outcome.gpcEvents.first { $0.purpose == "sale" }?.decision == .withdrawn)
            #expect(outcome.gpcEvents.first { $0.purpose == "sharing.ads" }?.decision == .denied)
            #expect(try await h.consent.check(erin, purpose: "sale").allowed == false)
            #expect(try await h.consent.check(erin, purpose: "analytics").allowed)
            let again = try await h.consent.record(Fixtures.decide(erin, "analytics", .granted, gpc: true))
            #expect(again.gpcEvents.isEmpty)
        }
    }

    @Test func audiencesListExactlyTheAllowedSubjects() async throws {
        try await withHarness { h in
            var granted: [UUID] = []
            for index in 0..<5 {
                granted.append(
                    try await h.consent.record(Fixtures.grant(Fixtures.email("g\(index)@example.com"), "analytics"))
                        .subjectID)
            }
            let withdrawn = try await h.consent.record(
                Fixtures.decide(Fixtures.email("w@example.com"), "analytics", .withdrawn))
            let optedOut = try await h.consent.record(
                Fixtures.decide(Fixtures.email("g0@example.com"), "personalization", .denied))
            var seen: [UUID] = []
            var cursor: UUID? = nil
            repeat {
                let page = try await h.consent.audience(purpose: "analytics", after: cursor, limit: 2)
                seen += page.subjects
                cursor = page.next
            } while cursor != nil
            #expect(Set(seen) == Set(granted))
            #expect(seen.count == granted.count)
            let personalization = try await h.consent.audience(purpose: "personalization", after: nil, limit: 100)
            #expect(
                Set(personalization.subjects) == Set(granted + [withdrawn.subjectID]).subtracting([optedOut.subjectID]))
        }
    }

    @Test func linkAndMergeGiveOneViewOfTheCustomer() async throws {
        try await withHarness { h in
            let byEmail = try await h.consent.record(Fixtures.grant(Fixtures.email("frank@example.com"), "analytics"))
            let phone = SubjectReference.identity(try NormalizedIdentity(kind: .phone, raw: "+44 20 7946 0958"))
            let byPhone = try await h.consent.record(Fixtures.decide(phone, "personalization", .denied))
            #expect(byEmail.subjectID != byPhone.subjectID)
            let external = try NormalizedIdentity(kind: .externalId, raw: "crm-991")
            #expect(try await h.subjects.link(external, to: byEmail.subjectID, actor: "test") != .alreadyLinked)
            #expect(try await h.subjects.link(external, to: byEmail.subjectID, actor: "test") == .alreadyLinked)
            await #expect(throws: StewardError.self) {
                try await h.subjects.link(
                    try NormalizedIdentity(kind: .phone, raw: "+442079460958"), to: byEmail.subjectID, actor: "test")
            }
            let merge = try await h.subjects.merge(source: byPhone.subjectID, into: byEmail.subjectID, actor: "test")
            #expect(merge.identitiesMoved == 1 && merge.eventsMoved == 1)
            #expect(try await h.consent.subjectID(phone) == byEmail.subjectID)
            #expect(try await h.consent.subjectID(.id(byPhone.subjectID)) == byEmail.subjectID)
            #expect(try await h.consent.check(phone, purpose: "analytics").allowed)
            #expect(try await h.consent.check(.identity(external), purpose: "personalization").allowed == false)
            let history = try await h.consent.history(subjectID: byEmail.subjectID, after: 0, limit: 10)
            #expect(history.events.map(\.ordinal) == [1, 2])
            let identities = try await h.store.read { try await $0.identities(subjectID: byEmail.subjectID) }
            for identity in identities {
                _ = try h.crypto.cipher.open(
                    identity.ciphertext,
                    context: FieldContext(
                        table: "identities", column: "value", rowID: identity.id, subjectID: byEmail.subjectID))
            }
            #expect(identities.count == 3)
        }
    }

    @Test func bulkAppliesValidLinesAndReportsInvalidOnes() async throws {
        try await withHarness { h in
            var items: [ConsentService.BulkItem] = []
            for line in 1...25 {
                items.append(
                    .command(line: line, Fixtures.grant(Fixtures.email("bulk\(line % 20)@example.com"), "analytics")))
            }
            items.append(.command(line: 26, Fixtures.grant(Fixtures.email("x@example.com"), "no.such.purpose")))
            items.append(.command(line: 27, Fixtures.decide(.id(UUID()), "analytics", .denied)))
            items.append(.rejected(line: 28, StewardError(.requestMalformedJson, "bad")))
            let outcome = try await h.consent.recordBulk(items, batchSize: 10)
            #expect(outcome.accepted == 25)
            // Line 27 is refused inside its batch's transaction before it writes: the batch goes on.
            #expect(outcome.batchesSplit == 0)
            #expect(outcome.rejected.map(\.line) == [26, 27, 28])
            #expect(
                outcome.rejected.map(\.error.code.rawValue) == [
                    "purpose.unknown", "subject.unknown", "request.malformed_json",
                ])
            let audience = try await h.consent.audience(purpose: "analytics", after: nil, limit: 100)
            #expect(audience.subjects.count == 20)
            #expect(try await h.audit.verify(store: h.store).isIntact)
        }
    }

    @Test func bulkGivesTheSameLedgerAsOneByOneRecording() async throws {
        // Batches remember subjects, states and ordinals they wrote; the ledger must be exactly what
        // recording the lines one by one gives, across batch boundaries and for existing subjects.
        let lines: [(String, String, ConsentDecision)] = (0..<40).map { index in
            let person = ["old@example.com", "new1@example.com", "new2@example.com"][index % 3]
            let purpose = ["analytics", "sale", "personalization", "marketing.email"][(index / 3) % 4]
            let decision: ConsentDecision = [.granted, .denied, .withdrawn, .granted][(index / 2) % 4]
            return (person, purpose, decision)
        }
        @Sendable func ledger(_ h: Harness, batchSize: Int?) async throws -> [[String]] {
            _ = try await h.consent.record(Fixtures.decide(Fixtures.email("old@example.com"), "analytics", .denied))
            let commands = lines.map { Fixtures.decide(Fixtures.email($0.0), $0.1, $0.2, gpc: $0.1 == "analytics") }
            if let batchSize {
                // Double opt-in grants are left pending as one by one, their tokens handed back.
                let outcome = try await h.consent.recordBulk(
                    commands.enumerated().map { .command(line: $0.offset + 1, $0.element) }, batchSize: batchSize,
                    issueConfirmationTokens: true)
                #expect(outcome.accepted == lines.count && outcome.rejected.isEmpty)
                #expect(outcome.pending.count == 4 && outcome.pending.allSatisfy { $0.purpose == "marketing.email" })
            } else {
                for command in commands { _ = try await h.consent.record(command) }
            }
            // One more single write after the bulk: its ordinal follows the bulk's last.
            _ = try await h.consent.record(Fixtures.decide(Fixtures.email("new2@example.com"), "sale", .denied))
            var rows: [[String]] = []
            for person in ["old@example.com", "new1@example.com", "new2@example.com"] {
                let subject = try await h.consent.subjectID(Fixtures.email(person))
                let history = try await h.consent.history(subjectID: subject, after: 0, limit: 500).events
                #expect(history.map(\.ordinal) == Array(1...Int64(history.count)))
                rows += history.map {
                    [person, "\($0.ordinal)", $0.purpose, $0.decision.rawValue, $0.status.rawValue, $0.method.rawValue]
                }
                let states = try await h.consent.states(subjectID: subject).states
                rows += states.map { [person, $0.purpose, $0.status.rawValue] }
                // A bulk seals new identities before its transaction (prepareBulk): each value must open
                // under its own row and subject ids.
                let identities = try await h.store.read { try await $0.identities(subjectID: subject) }
                #expect(identities.count == 1)
                for identity in identities {
                    let value = try h.crypto.cipher.open(
                        identity.ciphertext,
                        context: FieldContext(
                            table: "identities", column: "value", rowID: identity.id, subjectID: subject))
                    #expect(String(decoding: value, as: UTF8.self) == person)
                }
            }
            #expect(try await h.audit.verify(store: h.store).isIntact)
            return rows
        }
        let oneByOne = try await withHarness { try await ledger($0, batchSize: nil) }
        #expect(oneByOne.count > 40)
        // The lines exercise what depends on the state before: GPC withdrawing an earlier sale grant
        // (denying it when there was none) and double opt-in grants left pending.
        #expect(oneByOne.contains { $0.count == 6 && $0[5] == "gpc" && $0[3] == "withdrawn" })
        #expect(oneByOne.contains { $0.count == 6 && $0[2] == "marketing.email" && $0[4] == "pending" })
        for batchSize in [7, 1_000] {
            let inBulk = try await withHarness { try await ledger($0, batchSize: batchSize) }
            #expect(inBulk == oneByOne, "batch size \(batchSize)")
        }
    }

    /// Imports run on jobs (issue 16, item 5): the batches commit the job's cursor under its lease, a
    /// run that dies is resumed by the next after its lease expires, each line is recorded once, and a
    /// finished file is not imported again.
    @Test func anInterruptedImportResumesAfterItsLastCommittedLine() async throws {
        try await withHarness { h in
            let items: [ConsentService.BulkItem] = (1...30).map { line in
                line == 14
                    ? .rejected(line: line, StewardError(.importColumnCount, "bad row"))
                    : .command(line: line, Fixtures.grant(Fixtures.email("resume\(line)@example.com"), "analytics"))
            }
            let imports = ConsentImports(consent: h.consent, owner: "first")
            guard
                case .run(let first) = try await imports.start(
                    file: "consents.csv", format: "csv", sha256: "test-digest", again: false, actor: "cli:test")
            else { throw Failure("the first run did not get its lease") }
            #expect(first.resumeFrom == nil && first.job.idempotencyKey == "import:csv:test-digest")
            // The process "dies" after two batches of ten: only those committed, with the cursor.
            _ = try await h.consent.recordBulk(
                Array(items.prefix(21)), batchSize: 10, checkpoint: first.cursor(accepted: 0, rejected: 0))
            let stopped = try #require(try await imports.list().first)
            #expect(stopped.payload?.file == "consents.csv" && stopped.job.state == .running)
            #expect(stopped.position == .init(line: 21, accepted: 20, rejected: 1))
            // A second run meanwhile waits for the dead run's lease…
            let second = ConsentImports(consent: h.consent, owner: "second")
            guard
                case .busy = try await second.start(
                    file: "consents.csv", format: "csv", sha256: "test-digest", again: false, actor: "cli:test")
            else { throw Failure("a live lease was taken") }
            // …and takes over once it expired, resuming after line 21.
            h.clock.advance(by: Double(ConsentImports.leaseDuration.components.seconds) + 1)
            guard
                case .run(let resumed) = try await second.start(
                    file: "consents.csv", format: "csv", sha256: "test-digest", again: false, actor: "cli:test")
            else { throw Failure("the expired lease was not taken over") }
            #expect(resumed.job.id == first.job.id)
            #expect(resumed.resumeFrom == .init(line: 21, accepted: 20, rejected: 1))
            // The dead run's lease fences it: a batch it commits late records nothing.
            await #expect(throws: JobLeaseLost.self) {
                _ = try await h.consent.recordBulk(
                    [items[21]], batchSize: 10, checkpoint: first.cursor(accepted: 20, rejected: 1))
            }
            let rest = items.filter { $0.line > 21 }
            let outcome = try await h.consent.recordBulk(
                rest, batchSize: 10, checkpoint: resumed.cursor(accepted: 20, rejected: 1))
            #expect(outcome.accepted == 9)
            try await second.finish(
                resumed, total: .init(accepted: 29, rejected: 1, lines: 30), accepted: outcome.accepted,
                rejected: outcome.rejected.count, resumedAfter: 21, actor: "cli:test")
            let finished = try #require(try await imports.list().first)
            #expect(finished.job.state == .succeeded && finished.total == .init(accepted: 29, rejected: 1, lines: 30))
            // The same file again is not imported twice; `again` makes a new job.
            guard
                case .importedBefore = try await imports.start(
                    file: "consents.csv", format: "csv", sha256: "test-digest", again: false, actor: "cli:test")
            else { throw Failure("a finished file would be imported again") }
            guard
                case .run(let again) = try await imports.start(
                    file: "consents.csv", format: "csv", sha256: "test-digest", again: true, actor: "cli:test")
            else { throw Failure("--again did not start a new import") }
            #expect(again.job.id != first.job.id && again.resumeFrom == nil)
            // The finished import is audited, in the chain, with this run's counts; each start that
            // created an import job is audited with its content digest (never the file's name).
            let entries = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
            let audited = try #require(entries.last { $0.draft.action == "consent.import.finished" })
            let starts = entries.filter { $0.draft.action == "consent.import.started" }
            #expect(starts.map(\.draft.targetID) == [first.job.id.lowercasedString, again.job.id.lowercasedString])
            #expect(starts.last?.draft.details == ["format": "csv", "sha256": "test-digest", "again": "true"])
            #expect(
                audited.draft.action == "consent.import.finished" && audited.draft.targetID == "import:csv:test-digest")
            #expect(audited.draft.details == ["accepted": "9", "rejected": "0", "resumed_after_line": "21"])
            #expect(try await h.audit.verify(store: h.store).isIntact)
            let audience = try await h.consent.audience(purpose: "analytics", after: nil, limit: 100)
            #expect(audience.subjects.count == 29)
            for line in [1, 21, 22, 30] {
                let subject = try await h.consent.subjectID(Fixtures.email("resume\(line)@example.com"))
                #expect(try await h.consent.history(subjectID: subject, after: 0, limit: 10).events.count == 1)
            }
            // A subject.created and a consent.recorded per line, the import's finish and two starts.
            #expect(try await h.audit.verify(store: h.store).checked == 29 * 2 + 1 + 2)
        }
    }

    /// Checkpoints earlier versions kept as settings become jobs, the settings go.
    @Test func legacyImportCheckpointsBecomeJobs() async throws {
        try await withHarness { h in
            try await h.store.write { transaction in
                try await transaction.setSetting("import:csv:aaaa", value: "done")
                try await transaction.setSetting(
                    "import-file:csv:aaaa", value: #"{"accepted":5,"file":"old.csv","lines":6,"rejected":1}"#)
                try await transaction.setSetting("import:jsonl:bbbb", value: "40 38 2")
                try await transaction.setSetting("imports-are-not-this", value: "1")
            }
            let imports = ConsentImports(consent: h.consent)
            #expect(try await imports.migrateLegacyCheckpoints() == 2)
            #expect(try await imports.migrateLegacyCheckpoints() == 0)
            // The migration is audited once, in its transaction.
            let migrated = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
                .filter { $0.draft.action == "consent.import.migrated" }
            #expect(migrated.map(\.draft.details) == [["imports": "2"]])
            let listed = try await imports.list()
            let done = try #require(listed.first { $0.job.idempotencyKey == "import:csv:aaaa" })
            #expect(done.job.state == .succeeded && done.payload?.file == "old.csv")
            #expect(done.total == .init(accepted: 5, rejected: 1, lines: 6))
            let open = try #require(listed.first { $0.job.idempotencyKey == "import:jsonl:bbbb" })
            #expect(open.job.state == .queued && open.position == .init(line: 40, accepted: 38, rejected: 2))
            #expect(
                try await h.store.read { try await $0.settings(prefix: "import") }.map(\.key) == [
                    "imports-are-not-this"
                ])
            // The unfinished one resumes where it stopped.
            guard
                case .run(let run) = try await imports.start(
                    file: "new.jsonl", format: "jsonl", sha256: "bbbb", again: false, actor: "cli:test")
            else { throw Failure("the migrated import could not be resumed") }
            #expect(run.job.id == open.job.id && run.resumeFrom?.line == 40)
        }
    }

    @Test func aLineTheDatabaseRefusesSinksOnlyItself() async throws {
        try await withHarness { h in
            // A trigger stands in for any constraint a valid-looking line can trip in the database.
            switch TestBackend.current {
            case .sqlite:
                try await h.execute(
                    """
                    CREATE TRIGGER poison BEFORE INSERT ON consent_events WHEN NEW.source = 'poison'
                    BEGIN SELECT RAISE(ABORT, 'poisoned line'); END
                    """)
            case .postgres:
                try await h.execute(
                    """
                    CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.source = 'poison' THEN RAISE EXCEPTION 'poisoned line'; END IF; RETURN NEW; END $$
                    """)
                try await h.execute(
                    "CREATE TRIGGER poison BEFORE INSERT ON consent_events FOR EACH ROW EXECUTE FUNCTION poison()")
            }
            let items: [ConsentService.BulkItem] = (1...25).map { line in
                var command = Fixtures.grant(Fixtures.email("line\(line)@example.com"), "analytics")
                if line == 7 || line == 19 { command.source = "poison" }
                return .command(line: line, command)
            }
            let outcome = try await h.consent.recordBulk(items, batchSize: 10)
            #expect(outcome.accepted == 23)
            #expect(outcome.rejected.map(\.line) == [7, 19])
            #expect(
                outcome.rejected.allSatisfy {
                    $0.error.code.rawValue == "store.rejected" && !$0.error.detail.contains("poison")
                }
            )
            let audience = try await h.consent.audience(purpose: "analytics", after: nil, limit: 100)
            #expect(audience.subjects.count == 23)
            await #expect(throws: StewardError.self) {
                _ = try await h.consent.subjectID(Fixtures.email("line7@example.com"))
            }
            let verification = try await h.audit.verify(store: h.store)
            #expect(verification.isIntact && verification.checked == 23 * 2)
        }
    }

    @Test func auditChainVerifiesAndNamesTheFirstTamperedEntry() async throws {
        try await withHarness { h in
            for index in 0..<4 {
                _ = try await h.consent.record(Fixtures.grant(Fixtures.email("a\(index)@example.com"), "analytics"))
            }
            let intact = try await h.audit.verify(store: h.store)
            #expect(intact.isIntact && intact.checked == 8)
            let entries = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
            #expect(entries.map(\.sequence) == Array(1...8))
            #expect(entries.allSatisfy { !$0.draft.details.values.contains { $0.contains("@") } })
            try await h.execute("UPDATE audit_log SET outcome = 'denied' WHERE sequence = 5")
            let broken = try await h.audit.verify(store: h.store)
            #expect(broken.firstBroken == 5)
            #expect(broken.checked == 4)
        }
    }

    @Test func apiKeysAuthenticateUntilRevoked() async throws {
        try await withHarness { h in
            let keys = h.keys
            let (record, secret) = try await keys.create(name: "billing", role: .service, actor: "test")
            #expect(secret.hasPrefix("stw_") && secret.count >= 40)
            #expect(try await keys.authenticate(secret: secret)?.role == .service)
            #expect(try await keys.authenticate(secret: secret + "x") == nil)
            #expect(try await keys.authenticate(secret: "not-a-key") == nil)
            _ = try await keys.revoke(id: record.id, actor: "test")
            #expect(try await keys.authenticate(secret: secret) == nil)
            let listed = try await keys.list()
            #expect(listed.count == 1 && listed[0].revokedAt != nil)
            let actions = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 10) }.map(
                \.draft.action)
            #expect(actions == ["key.created", "key.revoked"])
        }
    }

    @Test func maintenanceRunsBesideWritesAndKeepsEverything() async throws {
        try await withHarness { h in
            let consent = h.consent
            let store = h.store
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for index in 0..<200 {
                        _ = try await consent.record(
                            Fixtures.grant(Fixtures.email("m\(index)@example.com"), "analytics"))
                    }
                }
                group.addTask { for _ in 0..<20 { try await store.maintain() } }
                try await group.waitForAll()
            }
            try await h.store.maintain()
            let audience = try await h.consent.audience(purpose: "analytics", after: nil, limit: 1_000)
            #expect(audience.subjects.count == 200)
            #expect(try await h.audit.verify(store: h.store).checked == 400)
        }
    }

    @Test func warmReadsTheCheckStructuresOrLeavesThemToTheServer() async throws {
        try await withHarness { h in
            for index in 0..<5 {
                let subject = Fixtures.email("w\(index)@example.com")
                _ = try await h.consent.record(Fixtures.grant(subject, "analytics"))
                _ = try await h.consent.record(Fixtures.decide(subject, "personalization", .denied))
            }
            let rows = try await h.store.warm()
            switch TestBackend.current {
            case .sqlite: #expect(rows == 5 + 10)  // five identities, ten consent states
            case .postgres: #expect(rows == nil)
            }
            let check = try await h.consent.check(Fixtures.email("w3@example.com"), purpose: "analytics")
            #expect(check.allowed)
        }
    }

    @Test func twoInstancesOnOneDatabaseKeepOneLedger() async throws {
        // Scale-out: two instances write the same new people at the same time. Each person must end
        // up as one subject with both decisions, ordinals 1 and 2, and one unbroken audit chain.
        try await withHarness(peer: true) { h in
            let here = h.consent
            let there = h.consent(on: try #require(h.peer))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    let person = Fixtures.email("both\(index)@example.com")
                    group.addTask { _ = try await here.record(Fixtures.grant(person, "analytics")) }
                    group.addTask { _ = try await there.record(Fixtures.decide(person, "personalization", .denied)) }
                }
                try await group.waitForAll()
            }
            for index in 0..<40 {
                let subject = try await here.subjectID(Fixtures.email("both\(index)@example.com"))
                let states = try await there.states(subjectID: subject).states
                #expect(states.map(\.purpose) == ["analytics", "personalization"])
                let history = try await here.history(subjectID: subject, after: 0, limit: 10).events
                #expect(history.map(\.ordinal) == [1, 2])
            }
            let verification = try await h.audit.verify(store: h.store)
            #expect(verification.isIntact)
            #expect(verification.checked == 40 + 80)  // one subject.created per person, one entry per event

            // A key revoked on one instance: at once there, within the cache lifetime on the other.
            let key = try await h.keys.create(name: "shared", role: .service, actor: "test")
            let otherKeys = h.keys(on: try #require(h.peer))
            #expect(try await otherKeys.authenticate(secret: key.secret) != nil)
            _ = try await h.keys.revoke(id: key.record.id, actor: "test")
            #expect(try await otherKeys.authenticate(secret: key.secret) != nil)  // cached, as documented
            h.clock.advance(by: otherKeys.cacheLifetime + 1)
            #expect(try await otherKeys.authenticate(secret: key.secret) == nil)
        }
    }

    @Test func twoInstancesImportingTheSamePeopleInOppositeOrdersLoseNothing() async throws {
        // Two bulk imports on two instances touch the same existing people in opposite orders: on
        // PostgreSQL their transactions lock the same subject rows crosswise, a deadlock the server
        // breaks by aborting one. The aborted batch must be retried whole and every line recorded,
        // with no batch falling back to line-by-line transactions.
        try await withHarness(peer: true) { h in
            let people = (0..<30).map { Fixtures.email("crosswise\($0)@example.com") }
            let seeded = try await h.consent.recordBulk(
                people.enumerated().map { .command(line: $0.offset + 1, Fixtures.grant($0.element, "analytics")) })
            #expect(seeded.accepted == people.count)
            let here = h.consent
            let there = h.consent(on: try #require(h.peer))
            let rounds = 4
            let outcomes = try await withThrowingTaskGroup(of: ConsentService.BulkOutcome.self) { group in
                for round in 0..<rounds {
                    let forward = people.enumerated().map {
                        ConsentService.BulkItem.command(
                            line: $0.offset + 1,
                            Fixtures.decide($0.element, "sale", round % 2 == 0 ? .denied : .granted))
                    }
                    let backward = people.reversed().enumerated().map {
                        ConsentService.BulkItem.command(
                            line: $0.offset + 1, Fixtures.decide($0.element, "personalization", .denied))
                    }
                    group.addTask { try await here.recordBulk(forward, batchSize: people.count) }
                    group.addTask { try await there.recordBulk(backward, batchSize: people.count) }
                }
                var outcomes: [ConsentService.BulkOutcome] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            for outcome in outcomes {
                #expect(outcome.accepted == people.count && outcome.rejected.isEmpty)
                #expect(outcome.batchesSplit == 0)
            }
            for person in people {
                let subject = try await here.subjectID(person)
                let history = try await there.history(subjectID: subject, after: 0, limit: 100).events
                #expect(history.map(\.ordinal) == Array(1...Int64(1 + 2 * rounds)))
            }
            let verification = try await h.audit.verify(store: h.store)
            #expect(verification.isIntact)
        }
    }

    @Test func aBatchTooLargeForOneStatementKeepsEveryLine() async throws {
        // 1,100 new people with two decisions each in one batch: on PostgreSQL the batch's writes pass
        // the parameter budget of one statement (2,200 events x 17 values, 3,300 audit entries x 11)
        // and are split across several; ordinals, states and the chain must come out whole.
        try await withHarness { h in
            let people = (0..<1_100).map { Fixtures.email("large\($0)@example.com") }
            var items: [ConsentService.BulkItem] = []
            for (index, person) in people.enumerated() {
                items.append(.command(line: 2 * index + 1, Fixtures.grant(person, "analytics")))
                items.append(.command(line: 2 * index + 2, Fixtures.decide(person, "sale", .denied)))
            }
            let outcome = try await h.consent.recordBulk(items, batchSize: items.count)
            #expect(outcome.accepted == items.count && outcome.rejected.isEmpty && outcome.batchesSplit == 0)
            for person in [people[0], people[549], people[1_099]] {
                let subject = try await h.consent.subjectID(person)
                let history = try await h.consent.history(subjectID: subject, after: 0, limit: 10).events
                #expect(history.map(\.ordinal) == [1, 2])
                // The counter went in with the subject's insert: the next decision takes ordinal 3.
                let next = try await h.consent.record(Fixtures.decide(person, "analytics", .withdrawn))
                #expect(next.event.ordinal == 3)
            }
            let audience = try await h.consent.audience(purpose: "analytics", after: nil, limit: 2_000)
            #expect(audience.subjects.count == people.count - 3)
            let verification = try await h.audit.verify(store: h.store)
            #expect(verification.isIntact && verification.checked == 3 * people.count + 3)
        }
    }

    @Test func policyLoadIsAuditedOnlyWhenItChanges() async throws {
        try await withHarness { h in
            let first = try await h.audit.recordPolicyLoad(h.policy, store: h.store, actor: "system")
            let unchanged = try await h.audit.recordPolicyLoad(h.policy, store: h.store, actor: "system")
            let changed = PolicySet(purposes: Array(h.policy.purposes.values), notices: [], digest: "other")
            let afterChange = try await h.audit.recordPolicyLoad(changed, store: h.store, actor: "system")
            #expect(first && !unchanged && afterChange)
        }
    }

    @Test func concurrentFirstSightsOfOneSubjectCreateItOnce() async throws {
        try await withHarness { h in
            let consent = h.consent
            try await withThrowingTaskGroup(of: UUID.self) { group in
                for purpose in ["analytics", "personalization", "sale", "sharing.ads"] {
                    group.addTask {
                        try await consent.record(
                            Fixtures.decide(
                                Fixtures.email("race@example.com"), purpose, purpose == "analytics" ? .granted : .denied
                            )
                        ).subjectID
                    }
                }
                var ids: Set<UUID> = []
                for try await id in group { ids.insert(id) }
                #expect(ids.count == 1)
            }
            #expect(try await h.audit.verify(store: h.store).isIntact)
        }
    }

    /// Two transactions lock two subjects crosswise. PostgreSQL breaks the deadlock by aborting one: the
    /// store must report that as `StoreError.conflict` (which the services retry) with nothing of it
    /// applied. SQLite runs one writer at a time, so both commit.
    @Test func crosswiseLocksEndInARetryableConflictWithNothingApplied() async throws {
        try await withHarness { h in
            let first = try await h.consent.record(Fixtures.grant(Fixtures.email("first@example.com"), "analytics"))
                .subjectID
            let second = try await h.consent.record(Fixtures.grant(Fixtures.email("second@example.com"), "analytics"))
                .subjectID
            let arrived = Arrivals()
            let store = h.store
            @Sendable func lock(_ one: UUID, then other: UUID) async -> Result<Void, any Error> {
                do {
                    return .success(
                        try await store.write { transaction in
                            _ = try await transaction.nextOrdinal(subjectID: one)
                            arrived.count.add(1, ordering: .relaxed)
                            // Wait (a while at most: SQLite runs the other transaction only after this one)
                            // until the other transaction holds its first lock too.
                            for _ in 0..<50 where arrived.count.load(ordering: .relaxed) < 2 {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            _ = try await transaction.nextOrdinal(subjectID: other)
                        })
                } catch {
                    return .failure(error)
                }
            }
            let results = await withTaskGroup(of: Result<Void, any Error>.self) { group in
                for (one, other) in [(first, second), (second, first)] {
                    group.addTask { await lock(one, then: other) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let failures = results.compactMap { result -> (any Error)? in
                if case .failure(let error) = result { return error }
                return nil
            }
            #expect(failures.count == (store.backendName == "postgres" ? 1 : 0))
            for failure in failures { #expect(failure as? StoreError == .conflict) }
            // Each committed transaction took one ordinal of each subject; the aborted one took none.
            let next = try await store.write { transaction in
                (
                    try await transaction.nextOrdinal(subjectID: first),
                    try await transaction.nextOrdinal(subjectID: second)
                )
            }
            let committed = Int64(results.count - failures.count)
            #expect(next.0 == 2 + committed && next.1 == 2 + committed)
        }
    }

    /// A transaction's reads see its own writes, and a write the database refuses undoes the whole
    /// transaction, also where the store sends its inserts late (PostgreSQL's write buffer, ADR 0006).
    @Test func aTransactionSeesItsOwnWritesAndFailsWhole() async throws {
        try await withHarness { h in
            let existing = try await h.consent.record(
                Fixtures.decide(Fixtures.email("taken@example.com"), "analytics", .denied))
            let taken = try await h.store.read { try await $0.identities(subjectID: existing.subjectID) }[0]
            let now = h.clock.now

            let fresh = h.runtime.newID()
            let seen = try await h.store.write { transaction in
                try await transaction.insertSubject(id: fresh, createdAt: now)
                try await transaction.setOrdinal(subjectID: fresh, to: 4)
                return (
                    try await transaction.resolveSubject(fresh),
                    try await transaction.nextOrdinal(subjectID: fresh)
                )
            }
            #expect(seen.0 == fresh && seen.1 == 5)

            let doomed = h.runtime.newID()
            await #expect(throws: (any Error).self) {
                try await h.store.write { transaction in
                    try await transaction.insertSubject(id: doomed, createdAt: now)
                    // The same (kind, blind index) as an identity already stored: refused.
                    try await transaction.insertIdentity(
                        IdentityRecord(
                            id: h.runtime.newID(), subjectID: doomed, kind: .email, blindIndex: taken.blindIndex,
                            ciphertext: Data([1, 2, 3]), createdAt: now))
                }
            }
            #expect(try await h.store.read { try await $0.resolveSubject(doomed) } == nil)
            #expect(try await h.consent.subjectID(Fixtures.email("taken@example.com")) == existing.subjectID)
        }
    }
}

@Suite struct SQLiteAtRest {
    /// Identity values are sealed before they reach the store: the database file and its WAL never
    /// hold the plaintext (nor its lower-case or normalised forms).
    @Test func noEmailOrPhoneInTheDatabaseFileOrWAL() async throws {
        guard TestBackend.current == .sqlite else { return }
        try await withHarness { h in
            let email = "Zelda.Secret-Canary@Example.org"
            let phone = "+49 30 90182736"
            _ = try await h.consent.record(
                Fixtures.grant(.identity(try NormalizedIdentity(kind: .email, raw: email)), "analytics"))
            _ = try await h.consent.record(
                .init(
                    subject: .identity(try NormalizedIdentity(kind: .phone, raw: phone)), purpose: "analytics",
                    decision: .granted, method: .webForm, notice: Fixtures.notice, proofIP: "198.51.100.77",
                    proofUserAgent: "CanaryBrowser/1.0", actor: "test"))
            let path = try #require(h.sqlitePath)
            var bytes = Data()
            for suffix in ["", "-wal", "-shm"] {
                if let data = FileManager.default.contents(atPath: path + suffix) { bytes.append(data) }
            }
            #expect(bytes.count > 10_000)
            for needle in [
                email, email.lowercased(), "zelda.secret-canary", "+493090182736", "90182736", "198.51.100.77",
                "CanaryBrowser",
            ] {
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "found \(needle) on disk")
            }
        }
    }
}

/// Counts the transactions that reached a point (crosswise-locks test).
final class Arrivals: Sendable {
    let count = Atomic<Int>(0)
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
