import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StewardConnectors
import StewardCore
import StewardHTTP
import StewardPolicy
import StewardServices
import StewardTesting
import Testing

/// The data subject request routes (issue 18 item 7) on a real server over the shipped policy and
/// the example store: intake by a service, the officer's steps, the lists by deadline, one request
/// with each system's receipt, and who may do what.
@Suite struct RequestRoutes {
    func object(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func intakeStepsListsAndReceiptsOverHTTP() async throws {
        let policies = BuiltBinary.packageRoot.appendingPathComponent("Policies").path
        let policy = try PolicyLoader.load(directory: policies) { _ in "digest" }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-requests-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try ExampleStore.createSQLite(in: directory.path, customers: 100)
        let systems = CustomerSystems(
            policies: policies,
            environment: [
                "STEWARD_CRM_DATABASE": directory.appendingPathComponent("crm.sqlite").path,
                "STEWARD_MARKETING_DATABASE": directory.appendingPathComponent("marketing.sqlite").path,
            ])
        let map = policy.dataMap
        let execute: StewardServices.RequestExecution.Execute = {
            system, type, identities, corrections, hash, beforeCommit in
            let declared = try #require(map.system(system))
            let outcome = try await RequestExecutor(
                system: declared, map: map, connection: try systems.connection(declared)
            ).execute(
                type, identities: identities, corrections: corrections, hash: hash, beforeCommit: beforeCommit)
            return (outcome.receipt, outcome.rows)
        }
        // A customer of the example store, by the email the CRM holds.
        var found = ""
        try await SystemConnection.sqlite(SQLiteConnector(path: directory.appendingPathComponent("crm.sqlite").path))
            .sample(table: "customers", columns: ["email"], limit: 1, seed: 1) { found = ($0[0] ?? nil) ?? "" }
        let email = found
        #expect(email.contains("@"))
        try await withHarness(policy: policy) { h in
            let api = h.api(customerSystems: systems, requestExecute: execute)
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
            let service = try await h.key(.service)
            let auditor = try await h.key(.auditor)
            let admin = try await h.key(.admin)
            try await app.test(.live) { client in
                func call(_ method: HTTPRequest.Method, _ uri: String, _ key: String, _ body: String? = nil)
                    async throws -> TestResponse
                {
                    try await client.execute(
                        uri: uri, method: method,
                        headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
                        body: body.map { ByteBuffer(string: $0) })
                }
                // A service submits on the person's behalf, pre-verified.
                let created = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"erasure","subject":{"email":"\#(email)"},"verified":"pre_verified"}"#)
                #expect(created.status == .created)
                let request = try object(created)
                let id = try #require(request["id"] as? String)
                #expect(request["status"] as? String == "verified" && request["standing"] as? String == "on_time")
                #expect(!String(buffer: created.body).contains(email), "identities never come back out")

                // Who may do what: a service may not approve; an auditor may read, not submit.
                #expect(try await call(.post, "/v1/requests/\(id)/approve", service).status == .forbidden)
                #expect(
                    try await call(
                        .post, "/v1/requests", auditor,
                        #"{"regime":"gdpr","type":"access","subject":{"phone":"+14155550123"}}"#
                    ).status == .forbidden)
                #expect(try await call(.get, "/v1/requests/\(id)", auditor).status == .ok)

                // Refusals name the field; none changes anything.
                let unknownType = try await call(
                    .post, "/v1/requests", service, #"{"regime":"gdpr","type":"forget","subject":{"email":"a@b.co"}}"#)
                #expect(unknownType.status == .badRequest)
                #expect(try object(unknownType)["field"] as? String == "type")
                let notGranted = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"ccpa","type":"objection","subject":{"email":"a@b.co"}}"#)
                #expect(try object(notGranted)["code"] as? String == "request.type_not_granted")
                let empty = try await call(
                    .post, "/v1/requests", service, #"{"regime":"gdpr","type":"access","subject":{}}"#)
                #expect(try object(empty)["code"] as? String == "subject.missing")
                // A rectification's corrections: checked against the map, the value never echoed.
                for (corrections, status, code, field) in [
                    (
                        #"[{"field":"crm.orders.customer_id","value":"Secret Value"}]"#, 422,
                        "request.correction_unmapped",
                        "corrections[0].field"
                    ),
                    (#"[{"category":"user.name.last"}]"#, 400, "request.missing_field", "corrections[0].value"),
                    (#"[]"#, 400, "request.corrections_missing", "corrections"),
                    (
                        #"[{"category":"user.name.last","value":"A"},{"field":"crm.customers.last_name","value":"B"}]"#,
                        422, "request.correction_conflict", "corrections[1]"
                    ),
                ] {
                    let refused = try await call(
                        .post, "/v1/requests", service,
                        #"{"regime":"gdpr","type":"rectification","subject":{"email":"a@b.co"},"corrections":\#(corrections)}"#
                    )
                    #expect(refused.status.code == status, "\(corrections)")
                    let problem = try object(refused)
                    #expect(problem["code"] as? String == code && problem["field"] as? String == field)
                    #expect(!String(buffer: refused.body).contains("Secret Value"))
                }
                let rectification = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"rectification","subject":{"email":"a@b.co"},"corrections":[{"category":"user.name.last","value":"Lovelace"}]}"#
                )
                #expect(rectification.status == .created)
                #expect(!String(buffer: rectification.body).contains("Lovelace"))

                // An identity given as SHA-256 (OpenDSR): accepted; anything but 64 hex digits is not.
                let hashedIntake = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"access","subject":{"emailSha256":"\#(String(repeating: "aB", count: 32))"}}"#
                )
                #expect(hashedIntake.status == .created)
                let badHash = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"access","subject":{"emailSha256":"abc"}}"#)
                let badHashField = try object(badHash)["field"] as? String
                #expect(badHash.status == .badRequest && badHashField == "subject.emailSha256")

                // Made ten days before it reached Steward (OpenDSR's submitted_time): the clock runs
                // from then; a time in the future or over a year ago is refused.
                let tenDaysAgo = h.clock.now.addingTimeInterval(-10 * 86_400)
                let earlier = try object(
                    try await call(
                        .post, "/v1/requests", service,
                        #"{"regime":"ccpa","type":"access","subject":{"email":"late@b.co"},"submittedAt":"\#(Timestamp.iso8601(tenDaysAgo))"}"#
                    ))
                #expect(earlier["receivedAt"] as? String == Timestamp.iso8601(tenDaysAgo))
                #expect(earlier["recordedAt"] as? String == Timestamp.iso8601(h.clock.now))
                let ccpa = try #require(h.policy.regimes.first { $0.key == "ccpa" })
                #expect(
                    earlier["dueOn"] as? String
                        == ccpa.deadlines(for: .access, receivedAt: tenDaysAgo)?.dueOn.description)
                for bad in [
                    Timestamp.iso8601(h.clock.now.addingTimeInterval(3_600)),
                    Timestamp.iso8601(h.clock.now.addingTimeInterval(-400 * 86_400)), "yesterday",
                ] {
                    let refused = try await call(
                        .post, "/v1/requests", service,
                        #"{"regime":"ccpa","type":"access","subject":{"email":"late@b.co"},"submittedAt":"\#(bad)"}"#)
                    #expect(refused.status == .badRequest, "\(bad)")
                    #expect(try object(refused)["code"] as? String == "request.submitted_at_invalid")
                }
                let denyBad = try await call(.post, "/v1/requests/\(id)/deny", admin, #"{"reason":"because"}"#)
                #expect(denyBad.status == .badRequest)
                #expect(try object(denyBad)["field"] as? String == "reason")
                let blank = try await call(.post, "/v1/requests/\(id)/extend", admin, #"{"reason":"   "}"#)
                #expect(try object(blank)["code"] as? String == "request.extension_reason_missing")
                let missing = try await call(.post, "/v1/requests/\(UUID().uuidString)/approve", admin)
                #expect(missing.status == .notFound)

                // The officer approves: one task per system, carried out by the job runner.
                let approved = try object(try await call(.post, "/v1/requests/\(id)/approve", admin))
                #expect(approved["status"] as? String == "executing")
                let again = try await call(.post, "/v1/requests/\(id)/approve", admin)
                #expect(again.status == .conflict)
                #expect(try object(again)["code"] as? String == "request.invalid_transition")
                try await JobRunner(
                    store: h.store, runtime: h.runtime, configuration: .init(pollInterval: .milliseconds(20)),
                    untilIdle: true, logger: Logger(label: "test")
                ).registering(RequestTaskJob(service: api.requests)).run()
                let done = try object(try await call(.get, "/v1/requests/\(id)", auditor))
                #expect(done["status"] as? String == "completed" && done["standing"] == nil)
                let outcomes = try #require(done["systems"] as? [[String: Any]])
                #expect(outcomes.compactMap { $0["system"] as? String } == ["crm", "marketing"])
                #expect(
                    outcomes.allSatisfy { $0["state"] as? String == "done" && $0["jobState"] as? String == "succeeded" }
                )
                let crm = try #require(outcomes.first?["receipt"] as? [String: Any])
                #expect(crm["verified"] as? Bool == true)
                let customers = (crm["collections"] as? [[String: Any]])?.first {
                    $0["collection"] as? String == "customers"
                }
                #expect(customers?["deleted"] as? Int == 1)

                // Lists by deadline, filtered; overdue is none yet.
                let list = try object(try await call(.get, "/v1/requests?status=completed&type=erasure", auditor))
                #expect((list["requests"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])
                let overdue = try object(try await call(.get, "/v1/requests?overdue=true", auditor))
                #expect((overdue["requests"] as? [[String: Any]])?.isEmpty == true)
                let badStatus = try await call(.get, "/v1/requests?status=done", auditor)
                #expect(badStatus.status == .badRequest)
                #expect(try object(badStatus)["field"] as? String == "status")
            }
        }
    }

    /// A JSON call with a key: the answer, and its body as an object (empty if it is not one).
    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ key: String,
        _ body: String? = nil
    ) async throws -> (TestResponse, [String: Any]) {
        let response = try await client.execute(
            uri: uri, method: method, headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
            body: body.map { ByteBuffer(string: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
        return (response, object ?? [:])
    }

    @Test func aPersonVerifiesOnceWithTheTokenDeliveredToThem() async throws {
        let policies = BuiltBinary.packageRoot.appendingPathComponent("Policies").path
        let policy = try PolicyLoader.load(directory: policies) { _ in "digest" }
        try await withHarness(policy: policy) { h in
            // Tokens last 2 hours here (STEWARD_REQUESTS_VERIFICATION_HOURS; 7 days by default).
            let api = h.api(requestVerificationHours: 2)
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
            let service = try await h.key(.service)
            try await app.test(.live) { client in
                func post(_ uri: String, _ body: String? = nil) async throws -> (TestResponse, [String: Any]) {
                    try await Self.call(client, .post, uri, service, body)
                }
                // Intake without verification: the token comes back once, and only its hash is kept.
                let (created, request) = try await post(
                    "/v1/requests", #"{"regime":"gdpr","type":"access","subject":{"email":"ada@example.com"}}"#)
                #expect(created.status == .created && request["status"] as? String == "received")
                let issued = try #require(request["verificationToken"] as? [String: Any])
                let token = try #require(issued["token"] as? String)
                #expect(token.hasPrefix("dv_") && token.count == 46)
                let id = try #require(request["id"] as? String)
                let stored = try await h.store.write { try await $0.requestToken(hash: h.crypto.secrets.digest(token)) }
                #expect(stored?.requestID.lowercasedString == id)
                let shown = try await client.execute(
                    uri: "/v1/requests/\(id)", method: .get, headers: [.authorization: "Bearer \(service)"])
                #expect(!String(buffer: shown.body).contains(token), "shown at intake only")
                // Pre-verified: no token.
                let (_, preVerified) = try await post(
                    "/v1/requests",
                    #"{"regime":"gdpr","type":"access","subject":{"email":"bob@example.com"},"verified":"pre_verified"}"#
                )
                #expect(preVerified["verificationToken"] == nil)

                // A token verifies its own request only.
                let otherID = try #require(preVerified["id"] as? String)
                let (elsewhere, elsewhereBody) = try await post(
                    "/v1/requests/\(otherID)/confirm", #"{"token":"\#(token)"}"#)
                #expect(elsewhere.status == .notFound && elsewhereBody["code"] as? String == "request.token_unknown")
                // The token verifies the request, once.
                let (confirmed, verified) = try await post("/v1/requests/\(id)/confirm", #"{"token":"\#(token)"}"#)
                #expect(confirmed.status == .ok && verified["verification"] as? String == "token")
                #expect(verified["status"] as? String != "received")
                let (again, used) = try await post("/v1/requests/\(id)/confirm", #"{"token":"\#(token)"}"#)
                #expect(again.status == .conflict && used["code"] as? String == "request.token_used")
                let (unknown, unknownBody) = try await post(
                    "/v1/requests/\(id)/confirm", #"{"token":"dv_\#(String(repeating: "A", count: 43))"}"#)
                #expect(unknown.status == .notFound && unknownBody["code"] as? String == "request.token_unknown")
                let (_, notWaiting) = try await post("/v1/requests/\(id)/token")
                #expect(notWaiting["code"] as? String == "request.invalid_transition")

                // After its lifetime a token has expired; a new one replaces it.
                let (_, late) = try await post(
                    "/v1/requests", #"{"regime":"ccpa","type":"access","subject":{"email":"cy@example.com"}}"#)
                let lateID = try #require(late["id"] as? String)
                let lateToken = try #require(late["verificationToken"] as? [String: Any])
                let old = try #require(lateToken["token"] as? String)
                #expect(lateToken["expiresAt"] as? String == Timestamp.iso8601(h.clock.now.addingTimeInterval(7_200)))
                h.clock.advance(by: 7_200 + 1)
                let (expired, expiredBody) = try await post("/v1/requests/\(lateID)/confirm", #"{"token":"\#(old)"}"#)
                #expect(expired.status == .conflict && expiredBody["code"] as? String == "request.token_expired")
                let (reissued, fresh) = try await post("/v1/requests/\(lateID)/token")
                #expect(reissued.status == .created)
                let new = try #require(fresh["token"] as? String)
                #expect(new != old)
                let (_, oldAgain) = try await post("/v1/requests/\(lateID)/confirm", #"{"token":"\#(old)"}"#)
                #expect(oldAgain["code"] as? String == "request.token_unknown", "a new token replaces the old one")
                let (newConfirmed, _) = try await post("/v1/requests/\(lateID)/confirm", #"{"token":"\#(new)"}"#)
                #expect(newConfirmed.status == .ok)
                let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
                #expect(audit.contains { $0.draft.action == "request.verify" && $0.draft.targetID == lateID })
                #expect(
                    !audit.contains { "\($0.draft.details)".contains(new) || "\($0.draft.details)".contains(token) })
            }
        }
    }

    /// Opt-out, objection and restriction act on the consent check at once (issue 18 item 3).
    @Test func optOutObjectionAndRestrictionAreDenialsTheCheckEnforces() async throws {
        let policies = BuiltBinary.packageRoot.appendingPathComponent("Policies").path
        let policy = try PolicyLoader.load(directory: policies) { _ in "digest" }
        try await withHarness(policy: policy) { h in
            let api = h.api()
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
            let service = try await h.key(.service)
            let admin = try await h.key(.admin)
            try await app.test(.live) { client in
                func call(_ method: HTTPRequest.Method, _ uri: String, _ key: String, _ body: String? = nil)
                    async throws -> [String: Any]
                {
                    try await Self.call(client, method, uri, key, body).1
                }
                func allowed(_ email: String, _ purpose: String) async throws -> Bool? {
                    try await call(.get, "/v1/consents/check?email=\(email)&purpose=\(purpose)", service)["allowed"]
                        as? Bool
                }
                func grant(_ email: String, _ purpose: String) async throws {
                    _ = try await call(
                        .post, "/v1/consents", service,
                        #"{"subject":{"email":"\#(email)"},"purpose":"\#(purpose)","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"},"method":"web_form"}"#
                    )
                }
                // Sale and sharing are allowed until the person opts out (opt-out purposes).
                try await grant("ada@example.com", "analytics")
                #expect(try await allowed("ada@example.com", "sale") == true)
                let optOut = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"ccpa","type":"opt_out_sale","subject":{"email":"ada@example.com"}}"#)
                #expect(optOut["status"] as? String == "completed", "honoured at once, no verification")
                #expect(try await allowed("ada@example.com", "sale") == false)
                #expect(try await allowed("ada@example.com", "sharing.cross_context_ads") == false)
                #expect(try await allowed("ada@example.com", "analytics") == true, "other purposes untouched")

                // Objection (GDPR Art. 21): legitimate interests and consent, not the contract.
                try await grant("bob@example.com", "analytics")
                let objection = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"objection","subject":{"email":"bob@example.com"},"verified":"pre_verified"}"#
                )
                let objectionID = try #require(objection["id"] as? String)
                let approved = try await call(.post, "/v1/requests/\(objectionID)/approve", admin)
                #expect(approved["status"] as? String == "completed")
                for purpose in ["analytics", "personalization", "sale", "marketing.email"] {
                    #expect(try await allowed("bob@example.com", purpose) == false, "\(purpose)")
                }
                // Restriction (Art. 18) of a person Steward did not know yet: the denials hold for
                // the identity from then on.
                let restriction = try await call(
                    .post, "/v1/requests", service,
                    #"{"regime":"gdpr","type":"restriction","subject":{"phone":"+14155550123"},"verified":"pre_verified"}"#
                )
                _ = try await call(.post, "/v1/requests/\(try #require(restriction["id"] as? String))/approve", admin)
                #expect(try await allowed("ada@example.com", "personalization") == true)
                let check = try await call(
                    .get, "/v1/consents/check?phone=%2B14155550123&purpose=personalization", service)
                #expect(check["allowed"] as? Bool == false)

                // The events say where they came from; a client cannot claim that method.
                let history = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
                #expect(
                    history.contains {
                        $0.draft.action == "request.complete"
                            && $0.draft.details["purposes_denied"] == "sale,sharing.cross_context_ads"
                    })
                let forged = try await call(
                    .post, "/v1/consents", service,
                    #"{"subject":{"email":"cy@example.com"},"purpose":"sale","decision":"denied","method":"data_subject_request"}"#
                )
                #expect(
                    forged["code"] as? String == "consent.method_reserved"
                        || forged["code"] as? String == "method.invalid")
            }
        }
    }

    /// ADR 0011 decision 7: after an erasure, an import does not bring the person back (a replayed
    /// CRM export would otherwise re-add their consent); the person acting again themselves does.
    @Test func anImportDoesNotBringBackAPersonErasedOnRequest() async throws {
        // The shipped policy without customer systems: an erasure completes at once, and suppresses.
        let shipped = BuiltBinary.packageRoot.appendingPathComponent("Policies")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-supp-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for file in ["purposes.yaml", "taxonomy.yaml", "requests.yaml", "organisation.yaml"] {
            try FileManager.default.copyItem(
                at: shipped.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        let policy = try PolicyLoader.load(directory: directory.path) { _ in "digest" }
        try await withHarness(policy: policy) { h in
            let api = h.api(requestExecute: { _, _, _, _, _, _ in throw ConnectorError("no system to reach") })
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
            let service = try await h.key(.service)
            let admin = try await h.key(.admin)
            try await app.test(.live) { client in
                func post(_ uri: String, _ body: String, key: String? = nil) async throws
                    -> (TestResponse, [String: Any])
                {
                    try await Self.call(client, .post, uri, key ?? service, body)
                }
                func grant(_ email: String, _ method: String) -> String {
                    #"{"subject":{"email":"\#(email)"},"purpose":"analytics","decision":"granted","method":"\#(method)","notice":{"id":"privacy-policy","version":"2026-01"}}"#
                }
                let (recorded, _) = try await post("/v1/consents", grant("erased@example.com", "web_form"))
                #expect(recorded.status == .created)
                let (_, erasure) = try await post(
                    "/v1/requests",
                    #"{"regime":"gdpr","type":"erasure","subject":{"email":"erased@example.com"},"verified":"pre_verified"}"#
                )
                let id = try #require(erasure["id"] as? String)
                let (_, approved) = try await post("/v1/requests/\(id)/approve", "", key: admin)
                #expect(approved["status"] as? String == "completed")

                // An import of the erased address: refused, one line among others in a bulk too.
                let (refused, problem) = try await post("/v1/consents", grant("erased@example.com", "import"))
                #expect(refused.status == .conflict)
                #expect(problem["code"] as? String == "subject.suppressed" && problem["field"] as? String == "subject")
                #expect(!String(buffer: refused.body).contains("erased@example.com"))
                let lines = [grant("someone@example.com", "import"), grant("erased@example.com", "import")]
                let bulk = try await client.execute(
                    uri: "/v1/consents/bulk", method: .post,
                    headers: [.authorization: "Bearer \(service)", .contentType: "application/x-ndjson"],
                    body: ByteBuffer(string: lines.joined(separator: "\n")))
                let result = try #require(
                    try JSONSerialization.jsonObject(with: Data(bulk.body.readableBytesView)) as? [String: Any])
                #expect(result["accepted"] as? Int == 1)
                #expect((result["rejectedByCode"] as? [String: Int]) == ["subject.suppressed": 1])
                #expect((result["rejected"] as? [[String: Any]])?.first?["line"] as? Int == 2)

                // The person signing up again themselves is a new relationship: recorded, and then
                // imports for them are too.
                let (again, againBody) = try await post("/v1/consents", grant("erased@example.com", "web_form"))
                #expect(again.status == .created && againBody["subjectCreated"] as? Bool == true)
                let (imported, _) = try await post("/v1/consents", grant("erased@example.com", "import"))
                #expect(imported.status == .created)
            }
        }
    }
}
