import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StewardCore
import StewardHTTP
import StewardServices
import StewardTesting
import Testing

/// HTTP tests run a real server on loopback (`.live`) over the backend `Scripts/test.sh` selects.
@Suite struct HTTPSurface {
    func withServer(_ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void) async throws {
        try await withHarness { h in
            let app = buildApplication(api: h.api(), host: "127.0.0.1", port: 0, logger: testLogger)
            try await app.test(.live) { client in try await body(h, client) }
        }
    }

    func object(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    func headers(_ key: String?) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let key { fields[.authorization] = "Bearer \(key)" }
        return fields
    }

    /// Who may call what, written by hand (issue 16, item 8b): the expected answers do not come from
    /// `Role.allows`, the code under test, so a role granted one permission too many fails here.
    /// A: admin, S: service, U: auditor; a letter present means allowed.
    static let accessTable: [String: String] = [
        "POST /v1/consents": "AS",
        "POST /v1/consents/bulk": "AS",
        "POST /v1/consents/confirm": "AS",
        "GET /v1/consents/check": "AS",
        "POST /v1/consents/check": "AS",
        "GET /v1/audiences/{purpose}": "AS",
        "GET /v1/subjects": "AS",
        "GET /v1/subjects/{id}/consents": "AS",
        "GET /v1/subjects/{id}/consents/history": "AS",
        "POST /v1/subjects/{id}/identities": "A",
        "POST /v1/subjects/{id}/merge": "A",
        "GET /v1/purposes": "ASU",
        "GET /v1/notices": "ASU",
        "GET /v1/audit": "AU",
        "GET /v1/audit/verify": "AU",
        "GET /v1/keys": "A",
        "POST /v1/keys": "A",
        "DELETE /v1/keys/{id}": "A",
        "GET /v1/jobs": "AU",
        "GET /v1/jobs/{id}": "AU",
        "POST /v1/jobs/{id}/cancel": "A",
        "POST /v1/jobs/{id}/retry": "A",
        "GET /v1/datamap/taxonomy": "AU",
        "GET /v1/datamap/systems": "AU",
        "GET /v1/datamap/systems/{system}": "AU",
        "GET /v1/datamap/systems/{system}/drift": "AU",
        "GET /v1/datamap/systems/{system}/proposals": "A",
        "GET /v1/reports/ropa": "AU",
        "GET /v1/reports/minimisation": "AU",
        "GET /v1/reports/requests": "AU",
        "POST /v1/requests": "AS",
        "GET /v1/requests": "ASU",
        "GET /v1/requests/{id}": "ASU",
        "POST /v1/requests/{id}/verify": "A",
        "POST /v1/requests/{id}/approve": "A",
        "POST /v1/requests/{id}/deny": "A",
        "POST /v1/requests/{id}/cancel": "A",
        "POST /v1/requests/{id}/extend": "A",
        "GET /v1/requests/{id}/package": "AS",
        "POST /v1/requests/{id}/package/link": "AS",
        "POST /v1/requests/{id}/confirm": "AS",
        "POST /v1/requests/{id}/token": "AS",
    ]
    static let roleLetters: [Role: Character] = [.admin: "A", .service: "S", .auditor: "U"]

    /// The routes that take no API key, each with what authenticates it instead (written by hand:
    /// a route that forgot its permission becomes public and fails here).
    static let publicRoutes: Set<String> = [
        "GET /health", "GET /ready", "GET /metrics", "GET /openapi.json", "GET /.well-known/gpc.json",
        "POST /v1/requests/{id}/callbacks/{system}",  // the system's signature
        "GET /v1/packages/{token}",  // the download link's token
    ]

    @Test func onlyTheListedRoutesArePublic() async throws {
        try await withHarness { h in
            let open = endpoints(api: h.api()).filter { $0.permission == nil }
            #expect(Set(open.map { "\($0.method.rawValue) \($0.path)" }) == Self.publicRoutes)
        }
    }

    @Test func everyRouteAnswers401WithoutAKeyAnd403WithoutItsPermission() async throws {
        try await withServer { h, client in
            var keysByRole: [Role: String] = [:]
            for role in Role.allCases { keysByRole[role] = try await h.key(role) }
            #expect(Set(Self.roleLetters.keys) == Set(Role.allCases), "a new role needs its column in the table")
            let routes = endpoints(api: h.api()).filter { $0.permission != nil }
            #expect(
                Set(routes.map { "\($0.method.rawValue) \($0.path)" }) == Set(Self.accessTable.keys),
                "every authenticated route has exactly one row in the access table")
            for route in routes {
                let name = "\(route.method.rawValue) \(route.path)"
                let allowed = try #require(Self.accessTable[name])
                let path = route.path.replacingOccurrences(of: "{id}", with: UUID().uuidString)
                    .replacingOccurrences(of: "{purpose}", with: "analytics")
                    .replacingOccurrences(of: "{system}", with: "crm")
                let anonymous = try await client.execute(
                    uri: path, method: route.method, headers: headers(nil), body: nil)
                #expect(anonymous.status == .unauthorized, "\(name) without a key")
                #expect(try object(anonymous)["code"] as? String == "auth.unauthenticated")
                let forged = try await client.execute(
                    uri: path, method: route.method, headers: headers("stw_forged"), body: nil)
                #expect(forged.status == .unauthorized, "\(name) with a forged key")
                for role in Role.allCases {
                    let answer = try await client.execute(
                        uri: path, method: route.method, headers: headers(keysByRole[role]), body: nil)
                    if allowed.contains(Self.roleLetters[role]!) {
                        // Past authorization: whatever the route answers to an empty request, not 401/403.
                        #expect(
                            answer.status != .forbidden && answer.status != .unauthorized,
                            "\(name) as \(role) should be allowed")
                    } else {
                        #expect(answer.status == .forbidden, "\(name) as \(role) should be forbidden")
                        #expect(try object(answer)["code"] as? String == "auth.forbidden")
                    }
                }
            }
            // The set a role lists (keys create --help, the docs) is the set it is checked against.
            for role in Role.allCases {
                #expect(role.permissions == Set(Permission.allCases.filter { role.allows($0) }), "\(role)")
            }
        }
    }

    /// Operators see and steer jobs over HTTP (issue 16, item 6); every action is audited, and
    /// `/metrics` counts jobs by kind and state.
    @Test func jobsAreListedShownCancelledAndRetried() async throws {
        try await withServer { h, client in
            let admin = try await h.key(.admin)
            let auditor = try await h.key(.auditor)
            let queue = JobQueue(store: h.store, runtime: h.runtime)
            let job = try await queue.enqueue(
                ProbeJob.self, payload: .init(steps: 1, workMilliseconds: 0), actor: "test", audit: h.audit
            ).job
            let id = job.id.lowercasedString
            let listed = try object(
                try await client.execute(uri: "/v1/jobs", method: .get, headers: headers(auditor), body: nil))
            let jobs = try #require(listed["jobs"] as? [[String: Any]])
            #expect(
                jobs.count == 1 && jobs.first?["id"] as? String == id && jobs.first?["state"] as? String == "queued")
            #expect((jobs.first?["payload"] as? [String: Any])?["steps"] as? Int == 1)
            #expect((listed["counts"] as? [String: Int]) == ["queued": 1])
            let shown = try await client.execute(
                uri: "/v1/jobs/\(id)", method: .get, headers: headers(auditor), body: nil)
            #expect(try shown.status == .ok && (object(shown))["kind"] as? String == "steward.probe")
            let missing = try await client.execute(
                uri: "/v1/jobs/\(UUID())", method: .get, headers: headers(auditor), body: nil)
            #expect(try missing.status == .notFound && (object(missing))["code"] as? String == "job.not_found")
            let bad = try await client.execute(
                uri: "/v1/jobs?state=done", method: .get, headers: headers(auditor), body: nil)
            #expect(try bad.status == .badRequest && (object(bad))["field"] as? String == "state")

            let early = try await client.execute(
                uri: "/v1/jobs/\(id)/retry", method: .post, headers: headers(admin), body: nil)
            #expect(try early.status == .conflict && (object(early))["code"] as? String == "job.not_retryable")
            let cancelled = try await client.execute(
                uri: "/v1/jobs/\(id)/cancel", method: .post, headers: headers(admin), body: nil)
            #expect(try cancelled.status == .ok && (object(cancelled))["state"] as? String == "cancelled")
            let retried = try await client.execute(
                uri: "/v1/jobs/\(id)/retry", method: .post, headers: headers(admin), body: nil)
            #expect(try retried.status == .ok && (object(retried))["state"] as? String == "queued")
            let filtered = try object(
                try await client.execute(
                    uri: "/v1/jobs?state=cancelled&kind=steward.probe", method: .get, headers: headers(admin), body: nil
                ))
            #expect((filtered["jobs"] as? [Any])?.isEmpty == true)

            let actions = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 100) }
                .filter { $0.draft.targetID == id }.map(\.draft.action)
            #expect(actions == ["job.enqueued", "job.cancelled", "job.retried"])
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil)
            let text = String(buffer: metrics.body)
            #expect(text.contains(#"steward_jobs{kind="steward.probe",state="queued"} 1"#), "\(text.prefix(2_000))")
            #expect(text.contains(#"steward_jobs{kind="steward.probe",state="cancelled"} 0"#))
        }
    }

    @Test func limitsFromTheEnvironmentAreCheckedNotTrusted() throws {
        let limits = try HTTPLimits(environment: [
            "STEWARD_HTTP_IDLE_TIMEOUT": "2.5", "STEWARD_HTTP_MAX_CONNECTIONS": "64",
        ])
        #expect(limits.idleTimeout == .milliseconds(2_500) && limits.maxConnections == 64)
        #expect(try HTTPLimits(environment: [:]) == HTTPLimits())
        for (name, value) in [
            ("STEWARD_HTTP_MAX_CONNECTIONS", "1e30"), ("STEWARD_HTTP_MAX_CONNECTIONS", "nan"),
            ("STEWARD_HTTP_IDLE_TIMEOUT", "-1"), ("STEWARD_HTTP_BODY_TIMEOUT", "inf"),
            ("STEWARD_HTTP_BODY_TIMEOUT", "x"),
        ] {
            #expect(throws: HTTPLimitsError.self, "\(name)=\(value)") { try HTTPLimits(environment: [name: value]) }
        }
        #expect(throws: HTTPLimitsError.self) { try BulkLimits(environment: ["STEWARD_BULK_CONCURRENT": "0"]) }
        #expect(try BulkLimits(environment: ["STEWARD_BULK_MAX_BYTES": "1024"]).maxBytes == 1_024)
    }

    /// Issue 15, item 10: a known path with a method it does not take is 405 with `Allow`, not 404.
    @Test func unsupportedMethodsAnswer405WithAllow() async throws {
        try await withServer { _, client in
            for (method, uri, allow) in [
                (HTTPRequest.Method.delete, "/v1/consents/check?purpose=analytics", "GET, POST"),
                (.get, "/v1/consents", "POST"), (.put, "/v1/keys", "GET, POST"), (.post, "/health", "GET"),
                (.trace, "/v1/audit/verify", "GET"), (HTTPRequest.Method("QUERY")!, "/v1/keys/\(UUID())", "DELETE"),
            ] {
                let response = try await client.execute(uri: uri, method: method, headers: headers(nil), body: nil)
                #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                #expect(response.headers[.allow] == allow, "\(method) \(uri)")
                #expect(try object(response)["code"] as? String == "route.method_not_allowed")
            }
            let missing = try await client.execute(uri: "/v1/nothing", method: .get, headers: headers(nil), body: nil)
            #expect(missing.status == .notFound)
        }
    }

    @Test func theOpenAPIDocumentDescribesExactlyTheRoutes() async throws {
        try await withServer { h, client in
            let response = try await client.execute(uri: "/openapi.json", method: .get, headers: [:], body: nil)
            #expect(response.status == .ok)
            let document = try object(response)
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let routes = endpoints(api: h.api())
            for route in routes {
                let operation = paths[route.path]?[route.method.rawValue.lowercased()] as? [String: Any]
                #expect(operation != nil, "\(route.method) \(route.path) is not documented")
                #expect(operation?["x-steward-permission"] as? String == route.permission?.rawValue)
            }
            let documented = paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } }
            #expect(Set(documented) == Set(routes.map { "\($0.method.rawValue) \($0.path)" }))
        }
    }

    @Test func theWalkThroughOverHTTP() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            let grant =
                #"{"subject":{"email":"Walk@Example.com"},"purpose":"marketing.email","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"},"method":"web_form","proof":{"ip":"203.0.113.9","userAgent":"Mozilla"}}"#
            let created = try await client.execute(
                uri: "/v1/consents", method: .post, headers: headers(key), body: ByteBuffer(string: grant))
            #expect(created.status == .created)
            let body = try object(created)
            let token = try #require((body["confirmation"] as? [String: Any])?["token"] as? String)
            let subject = try #require(body["subjectId"] as? String)
            // Ids are shown in the lower-case form the database stores, in every response.
            let event = try #require(body["event"] as? [String: Any])
            for id in [
                subject, event["id"] as? String, event["subjectId"] as? String,
                (body["state"] as? [String: Any])?["recordId"] as? String,
            ] {
                #expect(id != nil && id == id?.lowercased() && UUID(uuidString: id ?? "") != nil)
            }
            let check = "/v1/consents/check?email=walk@example.com&purpose=marketing.email"
            #expect(
                try object(try await client.execute(uri: check, method: .get, headers: headers(key), body: nil))[
                    "allowed"] as? Bool == false)
            let confirmed = try await client.execute(
                uri: "/v1/consents/confirm", method: .post, headers: headers(key),
                body: ByteBuffer(string: #"{"token":"\#(token)"}"#))
            #expect(confirmed.status == .ok)
            let allowed = try object(
                try await client.execute(uri: check, method: .get, headers: headers(key), body: nil))
            #expect(allowed["allowed"] as? Bool == true)
            #expect(allowed["status"] as? String == "granted")
            #expect(allowed["basis"] as? String == "consent")
            let withdraw =
                #"{"subject":{"email":"walk@example.com"},"purpose":"marketing.email","decision":"withdrawn"}"#
            #expect(
                try await client.execute(
                    uri: "/v1/consents", method: .post, headers: headers(key), body: ByteBuffer(string: withdraw)
                ).status == .created)
            let denied = try object(
                try await client.execute(uri: check, method: .get, headers: headers(key), body: nil))
            #expect(denied["allowed"] as? Bool == false)
            #expect(denied["status"] as? String == "withdrawn")
            let history = try object(
                try await client.execute(
                    uri: "/v1/subjects/\(subject)/consents/history", method: .get, headers: headers(key), body: nil))
            let events = try #require(history["events"] as? [[String: Any]])
            #expect(events.compactMap { $0["status"] as? String } == ["pending", "granted", "withdrawn"])
            let auditor = try await h.key(.auditor)
            let verify = try object(
                try await client.execute(uri: "/v1/audit/verify", method: .get, headers: headers(auditor), body: nil))
            #expect(verify["intact"] as? Bool == true)
        }
    }

    @Test func badInputGetsProblemJSONWithAStableCodeAndTheField() async throws {
        try await withServer { h, client in
            let key = try await h.key(.admin)
            func post(_ json: String, to uri: String = "/v1/consents") async throws -> (
                HTTPResponse.Status, [String: Any], String?
            ) {
                let response = try await client.execute(
                    uri: uri, method: .post, headers: headers(key), body: ByteBuffer(string: json))
                return (response.status, try object(response), response.headers[.contentType])
            }
            var (status, problem, type) = try await post("{not json")
            #expect(status == .badRequest && problem["code"] as? String == "request.malformed_json")
            #expect(type == "application/problem+json")
            (status, problem, _) = try await post(
                #"{"subject":{"email":42},"purpose":"analytics","decision":"granted"}"#)
            #expect(status == .badRequest && problem["field"] as? String == "subject.email")
            (status, problem, _) = try await post(
                #"{"subject":{"email":"secret-person@"},"purpose":"analytics","decision":"granted"}"#)
            #expect(status == .badRequest && problem["code"] as? String == "identity.invalid_email")
            #expect(problem["field"] as? String == "subject.email")
            #expect(!(problem["detail"] as? String ?? "").contains("secret-person"))
            (status, problem, _) = try await post(
                #"{"subject":{"phone":"4155550123"},"purpose":"analytics","decision":"granted"}"#)
            #expect(status == .badRequest && problem["code"] as? String == "identity.invalid_phone")
            (status, problem, _) = try await post(
                #"{"subject":{"email":"a@example.com"},"purpose":"no.such","decision":"granted"}"#)
            #expect(status == .unprocessableContent && problem["code"] as? String == "purpose.unknown")
            (status, problem, _) = try await post(
                #"{"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"granted","notice":{"id":"x","version":"9"}}"#
            )
            #expect(status == .unprocessableContent && problem["code"] as? String == "notice.unknown")
            (status, problem, _) = try await post(
                #"{"subject":{"email":"a@example.com","phone":"+14155550123"},"purpose":"analytics","decision":"granted"}"#
            )
            #expect(status == .badRequest && problem["code"] as? String == "subject.ambiguous")
            (status, problem, _) = try await post(
                #"{"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"maybe"}"#)
            #expect(status == .badRequest && problem["field"] as? String == "decision")
            // Control characters (NUL among them: PostgreSQL cannot store it, SQLite's length() stops
            // at it) are refused before any write, with the field; found by the API fuzzer as a 500.
            (status, problem, _) = try await post(#"{"name":"\u0000ops","role":"admin"}"#, to: "/v1/keys")
            #expect(status == .badRequest && problem["code"] as? String == "text.control_characters")
            #expect(problem["field"] as? String == "name")
            for field in ["source", "consentString"] {
                (status, problem, _) = try await post(
                    #"{"subject":{"email":"a@example.com"},"purpose":"analytics","decision":"denied","\#(field)":"x\u0000y"}"#
                )
                #expect(status == .badRequest && problem["code"] as? String == "text.control_characters")
                #expect(problem["field"] as? String == field)
            }
            (status, problem, _) = try await post(#"{"token":"dc_nope"}"#, to: "/v1/consents/confirm")
            #expect(status == .notFound && problem["code"] as? String == "confirmation.unknown_token")
            let huge = "{\"source\":\"" + String(repeating: "x", count: 2 << 20) + "\"}"
            (status, problem, _) = try await post(huge)
            #expect(status == .contentTooLarge)
            let missing = try await client.execute(uri: "/v1/nowhere", method: .get, headers: headers(key), body: nil)
            let missingProblem = try object(missing)
            #expect(missing.status == .notFound && missingProblem["code"] as? String == "route.not_found")
            let badID = try await client.execute(
                uri: "/v1/subjects/not-a-uuid/consents", method: .get, headers: headers(key), body: nil)
            #expect(badID.status == .badRequest)
        }
    }

    @Test func gpcHeaderOptsOutOfSaleAndSharing() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            var fields = headers(key)
            fields[HTTPField.Name("Sec-GPC")!] = "1"
            let body =
                #"{"subject":{"email":"gpc@example.com"},"purpose":"analytics","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"}}"#
            let response = try await client.execute(
                uri: "/v1/consents", method: .post, headers: fields, body: ByteBuffer(string: body))
            #expect(response.status == .created)
            let optOuts = try #require(try object(response)["gpcOptOuts"] as? [[String: Any]])
            #expect(Set(optOuts.compactMap { $0["purpose"] as? String }) == ["sale", "sharing.ads"])
            let check = try object(
                try await client.execute(
                    uri: "/v1/consents/check?email=gpc@example.com&purpose=sale", method: .get, headers: headers(key),
                    body: nil))
            #expect(check["allowed"] as? Bool == false)
            let wellKnown = try object(
                try await client.execute(uri: "/.well-known/gpc.json", method: .get, headers: [:], body: nil))
            #expect(wellKnown["gpc"] as? Bool == true)
        }
    }

    @Test func bulkJSONLinesReportsRejectedLines() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            let lines = [
                #"{"subject":{"email":"b1@example.com"},"purpose":"analytics","decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"}}"#,
                #"{"subject":{"email":"broken"},"purpose":"analytics","decision":"granted"}"#,
                "",
                "not json",
                #"{"subject":{"phone":"+14155550100"},"purpose":"personalization","decision":"denied"}"#,
            ].joined(separator: "\n")
            let response = try await client.execute(
                uri: "/v1/consents/bulk", method: .post, headers: headers(key), body: ByteBuffer(string: lines))
            #expect(response.status == .ok)
            let result = try object(response)
            #expect(result["accepted"] as? Int == 2)
            let rejected = try #require(result["rejected"] as? [[String: Any]])
            #expect(rejected.compactMap { $0["line"] as? Int } == [2, 4])
        }
    }

    /// Issue 15, defect 1: the answer to a bulk of bad lines is bounded: counts by code, the first N.
    @Test func bulkAnswersCountEveryRejectionAndListTheFirstN() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            let good = #"{"subject":{"email":"bulk-ok@example.com"},"purpose":"sale","decision":"denied"}"#
            let body =
                ([good] + Array(repeating: "not json", count: 150)
                + Array(repeating: #"{"purpose":"sale"}"#, count: 100))
                .joined(separator: "\n")
            let response = try await client.execute(
                uri: "/v1/consents/bulk?rejections=10", method: .post, headers: headers(key),
                body: ByteBuffer(string: body))
            #expect(response.status == .ok)
            let result = try object(response)
            #expect(result["accepted"] as? Int == 1)
            #expect(result["rejectedCount"] as? Int == 250 && result["rejectionsOmitted"] as? Int == 240)
            #expect((result["rejected"] as? [[String: Any]])?.compactMap { $0["line"] as? Int } == Array(2...11))
            let byCode = try #require(result["rejectedByCode"] as? [String: Int])
            #expect(byCode == ["request.malformed_json": 150, "subject.missing": 100], "\(byCode)")
            let bad = try await client.execute(
                uri: "/v1/consents/bulk?rejections=many", method: .post, headers: headers(key),
                body: ByteBuffer(string: good))
            let problem = try object(bad)
            #expect(bad.status == .badRequest && problem["field"] as? String == "rejections")
        }
    }

    @Test func aBulkBodyOverItsLimitIsRefusedWhole() async throws {
        try await withHarness { h in
            let api = h.api(bulkLimits: BulkLimits(maxBytes: 4_096))
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
            try await app.test(.live) { client in
                let key = try await h.key(.service)
                let line = #"{"subject":{"email":"limit@example.com"},"purpose":"sale","decision":"denied"}"#
                let body = Array(repeating: line, count: 100).joined(separator: "\n")
                let response = try await client.execute(
                    uri: "/v1/consents/bulk", method: .post, headers: headers(key), body: ByteBuffer(string: body))
                #expect(response.status == .contentTooLarge)
                let check = try await h.consent.check(Fixtures.email("limit@example.com"), purpose: "sale")
                #expect(check.status == .none)  // nothing of it was recorded
            }
        }
    }

    @Test func databaseErrorsAreCountedAndAnsweredWithAnOpaque500() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            // A refused request is not a database error.
            let unknown = try await client.execute(
                uri: "/v1/consents/check?email=db-person@example.com&purpose=no.such.purpose", method: .get,
                headers: headers(key), body: nil)
            #expect(unknown.status == .unprocessableContent)
            var text = String(
                buffer: try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil).body)
            #expect(!text.contains("steward_database_errors_total{"))

            try await h.execute("DROP TABLE consent_state")
            let broken = try await client.execute(
                uri: "/v1/consents/check?email=db-person@example.com&purpose=analytics", method: .get,
                headers: headers(key),
                body: nil)
            #expect(broken.status == .internalServerError)
            #expect(try object(broken)["code"] as? String == "internal")
            #expect(!String(buffer: broken.body).contains("db-person"))
            text = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil).body)
            let line = text.split(separator: "\n").first { $0.hasPrefix("steward_database_errors_total{") }
            #expect(line?.contains("backend=\"\(h.store.backendName)\"") == true)
            #expect(line?.hasSuffix(" 1") == true)
            #expect(!text.contains("db-person"))
        }
    }

    @Test func consentEventsAreCountedAfterCommitForSingleAndBulkRecords() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            func body(_ email: String, _ decision: String) -> String {
                #"{"subject":{"email":"\#(email)"},"purpose":"analytics","decision":"\#(decision)","notice":{"id":"privacy-policy","version":"2026-01"}}"#
            }
            let single = try await client.execute(
                uri: "/v1/consents", method: .post, headers: headers(key),
                body: ByteBuffer(string: body("count-a@example.com", "granted")))
            #expect(single.status == .created)
            let lines = [
                body("count-b@example.com", "granted"), body("count-c@example.com", "granted"),
                body("count-d@example.com", "denied"),
                #"{"subject":{"email":"bad"},"purpose":"analytics","decision":"granted"}"#,
            ]
            let bulk = try await client.execute(
                uri: "/v1/consents/bulk", method: .post, headers: headers(key),
                body: ByteBuffer(string: lines.joined(separator: "\n")))
            #expect(bulk.status == .ok)
            let text = String(
                buffer: try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil).body)
            let counts = text.split(separator: "\n").filter { $0.hasPrefix("steward_consent_events_total{") }
            #expect(
                counts.contains {
                    $0.contains(#"decision="granted""#) && $0.contains(#"method="api""#) && $0.hasSuffix(" 3")
                })
            #expect(
                counts.contains {
                    $0.contains(#"decision="denied""#) && $0.contains(#"method="api""#) && $0.hasSuffix(" 1")
                })
            #expect(!text.contains("count-"))
        }
    }

    @Test func metricsCountRequestsByRouteTemplateWithoutPersonalData() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            _ = try await client.execute(
                uri: "/v1/consents/check?email=metric-person@example.com&purpose=analytics", method: .get,
                headers: headers(key), body: nil)
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil)
            let text = String(buffer: metrics.body)
            #expect(text.contains("steward_http_requests_total"))
            #expect(text.contains("/v1/consents/check"))
            #expect(!text.contains("metric-person"))
            let ready = try await client.execute(uri: "/ready", method: .get, headers: [:], body: nil)
            #expect(ready.status == .ok)
        }
    }

    /// Issue 15, defect 5 at the edge: the bearer scheme in any case, nothing loose around the token.
    @Test func theBearerHeaderIsParsedStrictly() async throws {
        try await withServer { h, client in
            let key = try await h.key(.service)
            let check = "/v1/consents/check?email=bearer%40example.com&purpose=analytics"
            func status(_ header: String) async throws -> HTTPResponse.Status {
                try await client.execute(uri: check, method: .get, headers: [.authorization: header], body: nil).status
            }
            for accepted in ["Bearer \(key)", "bearer \(key)", "BEARER \(key)"] {
                #expect(try await status(accepted) == .ok, "\(accepted.prefix(8))")
            }
            for refused in [
                // (A trailing space is not here: HTTP strips it from every field value, RFC 9110 §5.5.)
                "Bearer  \(key)", "Bearer \(key) junk", "Bearer\t\(key)", "Bearer", "Bearer ",
                "Basic \(key)", "Bearer =\(key)", "Bearer \(key)=x",
            ] {
                #expect(
                    try await status(refused) == .unauthorized, "\(refused.replacingOccurrences(of: key, with: "KEY"))")
            }
        }
    }

    /// Issue 15, defects 4 and 5 at the edge: 400 with the field, never 500, never stored.
    @Test func hostileFieldsAreRefusedWithTheirField() async throws {
        try await withServer { h, client in
            let admin = try await h.key(.admin)
            func post(_ uri: String, _ body: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                let response = try await client.execute(
                    uri: uri, method: .post, headers: headers(admin), body: ByteBuffer(string: body))
                let object =
                    (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
                return (response.status, object ?? [:])
            }
            let longName = String(repeating: "e\u{0301}", count: 100)
            let (keyStatus, keyProblem) = try await post("/v1/keys", #"{"name":"\#(longName)","role":"service"}"#)
            #expect(keyStatus == .badRequest && keyProblem["code"] as? String == "key.invalid_name")
            let consent = #"{"subject":{"email":"p@example.com"},"purpose":"sale","decision":"denied","#
            let hugeIP = String(repeating: "1", count: 60_000)
            for (body, code, field) in [
                (consent + #""proof":{"ip":"\#(hugeIP)"}}"#, "proof.invalid_ip", "proof.ip"),
                (consent + #""proof":{"ip":"not-an-ip"}}"#, "proof.invalid_ip", "proof.ip"),
                (
                    consent + #""proof":{"userAgent":"Mozilla\u001b[31m"}}"#, "text.control_characters",
                    "proof.userAgent"
                ),
                (
                    #"{"subject":{"externalId":"cust\u0000"},"purpose":"sale","decision":"denied"}"#,
                    "text.control_characters", "subject.externalId"
                ),
                (
                    #"{"subject":{"deviceId":"dev\u200b1"},"purpose":"sale","decision":"denied"}"#,
                    "text.invisible_characters", "subject.deviceId"
                ),
                (
                    #"{"subject":{"email":"a\u202e@example.com"},"purpose":"sale","decision":"denied"}"#,
                    "identity.invalid_email", "subject.email"
                ),
            ] {
                let (status, problem) = try await post("/v1/consents", body)
                #expect(status == .badRequest, "\(code)")
                #expect(problem["code"] as? String == code && problem["field"] as? String == field, "\(problem)")
            }
            for ip in ["203.0.113.9", "2001:db8::1", "::1"] {
                let (status, _) = try await post("/v1/consents", consent + #""proof":{"ip":"\#(ip)"}}"#)
                #expect(status == .created, "\(ip)")
            }
            // Invalid UTF-8 in a check's query string is refused, not looked up as something else.
            let service = try await h.key(.service)
            let check = try await client.execute(
                uri: "/v1/consents/check?email=a%FF%40example.com&purpose=analytics", method: .get,
                headers: headers(service), body: nil)
            #expect(check.status == .badRequest)
        }
    }
}
