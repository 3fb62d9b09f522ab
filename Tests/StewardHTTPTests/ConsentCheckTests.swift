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

/// Issue 19, items 1–3: every purpose in one check, the batch check, and a banner's choices recorded
/// in one POST — over HTTP on loopback, on the backend `Scripts/test.sh` selects.
@Suite struct ConsentCheckRoutes {
    func withServer(_ body: @escaping @Sendable (Harness, any TestClientProtocol, String) async throws -> Void)
        async throws
    {
        try await withHarness { h in
            let app = buildApplication(api: h.api(), host: "127.0.0.1", port: 0, logger: testLogger)
            let key = try await h.key(.service)
            try await app.test(.live) { client in try await body(h, client, key) }
        }
    }

    func call(
        _ client: any TestClientProtocol, _ key: String, _ method: HTTPRequest.Method, _ uri: String,
        _ body: String? = nil, gpc: Bool = false
    ) async throws -> (HTTPResponse.Status, [String: Any]) {
        var fields: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(key)"]
        if gpc { fields[HTTPField.Name("Sec-GPC")!] = "1" }
        let response = try await client.execute(
            uri: uri, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) })
        let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        return (response.status, try #require(object))
    }

    static let notice = #""notice":{"id":"privacy-policy","version":"2026-01"}"#

    @Test func aBannersChoicesAreRecordedInOneTransactionEachAsItsOwnEvent() async throws {
        try await withServer { h, client, key in
            let body =
                #"{"subject":{"email":"banner@example.com"},"decisions":{"sale":"denied","analytics":"granted","marketing.email":"granted","personalization":"withdrawn"},\#(Self.notice),"method":"banner","proof":{"ip":"203.0.113.9"}}"#
            let (status, answer) = try await call(client, key, .post, "/v1/consents", body)
            #expect(status == .created)
            #expect(answer["subjectCreated"] as? Bool == true)
            let decisions = try #require(answer["decisions"] as? [[String: Any]])
            let events = decisions.compactMap { $0["event"] as? [String: Any] }
            // In purpose key order, each with the record's notice, method and proof.
            #expect(
                events.compactMap { $0["purpose"] as? String } == [
                    "analytics", "marketing.email", "personalization", "sale",
                ])
            #expect(Set(events.compactMap { $0["method"] as? String }) == ["banner"])
            #expect(Set(events.compactMap { ($0["notice"] as? [String: Any])?["version"] as? String }) == ["2026-01"])
            #expect(Set(events.compactMap { ($0["proof"] as? [String: Any])?["ipHash"] as? String }).count == 1)
            #expect(events.compactMap { $0["ordinal"] as? Int } == [1, 2, 3, 4])
            // Double opt-in applies per purpose: only the newsletter waits, with its own token.
            let states = decisions.compactMap { ($0["state"] as? [String: Any])?["status"] as? String }
            #expect(states == ["granted", "pending", "withdrawn", "denied"])
            #expect(decisions.map { $0["confirmation"] != nil } == [false, true, false, false])

            // Every purpose in one call, in the order asked; `allowed` only when each one is.
            let (_, some) = try await call(
                client, key, .get, "/v1/consents/check?email=banner@example.com&purpose=sale&purpose=analytics")
            let checks = try #require(some["checks"] as? [[String: Any]])
            #expect(checks.compactMap { $0["purpose"] as? String } == ["sale", "analytics"])
            #expect(checks.compactMap { $0["allowed"] as? Bool } == [false, true])
            #expect(some["allowed"] as? Bool == false)
            // None asked: every purpose of the policy, each the same answer a single check gives.
            let (_, all) = try await call(client, key, .get, "/v1/consents/check?email=banner@example.com")
            let every = try #require(all["checks"] as? [[String: Any]])
            #expect(every.count == h.policy.purposes.count)
            for check in every {
                let purpose = try #require(check["purpose"] as? String)
                let (_, single) = try await call(
                    client, key, .get, "/v1/consents/check?email=banner@example.com&purpose=\(purpose)")
                #expect(single["allowed"] as? Bool == check["allowed"] as? Bool, "\(purpose)")
                #expect(single["status"] as? String == check["status"] as? String, "\(purpose)")
                #expect(single["recordId"] as? String == check["recordId"] as? String, "\(purpose)")
            }
            #expect(every.first { $0["purpose"] as? String == "service.receipts" }?["allowed"] as? Bool == true)
            let (_, twice) = try await call(
                client, key, .get, "/v1/consents/check?email=banner@example.com&purpose=sale&purpose=sale")
            #expect((twice["checks"] as? [Any])?.count == 1)

            // Sec-GPC applies to the choices as to one record: a grant of sale is recorded, then opted out.
            let gpcBody =
                #"{"subject":{"email":"banner-gpc@example.com"},"decisions":{"sale":"granted","analytics":"denied"},\#(Self.notice),"method":"banner"}"#
            let (gpcStatus, gpcAnswer) = try await call(client, key, .post, "/v1/consents", gpcBody, gpc: true)
            #expect(gpcStatus == .created)
            // Applied once, after every choice: each sale or sharing purpose is opted out once.
            let optOuts = try #require(gpcAnswer["gpcOptOuts"] as? [[String: Any]])
            #expect(optOuts.compactMap { $0["purpose"] as? String }.sorted() == ["sale", "sharing.ads"])
            let gpcStates = (gpcAnswer["decisions"] as? [[String: Any]])?.compactMap {
                ($0["state"] as? [String: Any])?["status"] as? String
            }
            #expect(gpcStates == ["denied", "withdrawn"])
            let (_, gpcChecks) = try await call(
                client, key, .get, "/v1/consents/check?email=banner-gpc@example.com&purpose=sale&purpose=sharing.ads")
            #expect((gpcChecks["checks"] as? [[String: Any]])?.compactMap { $0["allowed"] as? Bool } == [false, false])

            let auditor = try await h.key(.auditor)
            let (_, verify) = try await call(client, auditor, .get, "/v1/audit/verify")
            #expect(verify["intact"] as? Bool == true)
        }
    }

    @Test func choicesAreRefusedWholeWithTheirField() async throws {
        try await withServer { _, client, key in
            func refused(_ body: String) async throws -> (HTTPResponse.Status, String?, String?) {
                let (status, problem) = try await call(client, key, .post, "/v1/consents", body)
                return (status, problem["code"] as? String, problem["field"] as? String)
            }
            let subject = #""subject":{"email":"half@example.com"}"#
            var (status, code, field) = try await refused(
                #"{\#(subject),"purpose":"sale","decisions":{"sale":"denied"}}"#)
            #expect(status == .badRequest && code == "consent.decisions_invalid" && field == "decisions")
            (status, code, field) = try await refused(#"{\#(subject),"decisions":{}}"#)
            #expect(status == .badRequest && code == "consent.decisions_invalid")
            (status, code, field) = try await refused(#"{\#(subject),"decisions":{"sale":"denied","x.y":"denied"}}"#)
            #expect(status == .unprocessableContent && code == "purpose.unknown" && field == "decisions")
            (status, code, field) = try await refused(#"{\#(subject),"decisions":{"sale":"maybe"}}"#)
            #expect(status == .badRequest && code == "decision.invalid" && field == "decisions")
            // A grant of consent needs the notice, whichever entry carries it; the others are not kept.
            (status, code, field) = try await refused(
                #"{\#(subject),"decisions":{"sale":"denied","analytics":"granted"}}"#)
            #expect(status == .unprocessableContent && code == "consent.notice_required")
            (status, code, _) = try await refused(
                #"{\#(subject),"decisions":{"sale":"denied","service.receipts":"granted"},\#(Self.notice)}"#)
            #expect(status == .unprocessableContent && code == "purpose.not_consentable")
            let (found, _) = try await call(client, key, .get, "/v1/subjects?email=half@example.com")
            #expect(found == .notFound)
        }
    }

    @Test func aBatchCheckAnswersEveryPairInOrderAsSingleChecksDo() async throws {
        try await withServer { h, client, key in
            // 40 people, each with a different mix of decisions; some pairs name nobody.
            var subjectIDs: [String] = []
            let choices = ["granted", "denied", "withdrawn"]
            for person in 0..<40 {
                let body =
                    #"{"subject":{"email":"list\#(person)@example.com"},"decisions":{"analytics":"\#(choices[person % 3])","sale":"\#(choices[(person / 3) % 3])","personalization":"\#(choices[(person / 9) % 3])"},\#(Self.notice)}"#
                let (status, answer) = try await call(client, key, .post, "/v1/consents", body)
                #expect(status == .created)
                subjectIDs.append(try #require(answer["subjectId"] as? String))
            }
            let (linked, _) = try await call(
                client, try await h.key(.admin), .post, "/v1/subjects/\(subjectIDs[7])/identities",
                #"{"phone":"+14155550107"}"#)
            #expect(linked == .created)
            let purposes = h.policy.sortedPurposes.map(\.key)
            var pairs: [(json: String, query: String)] = []
            var generator = SplitMix64(seed: 19)
            for _ in 0..<ConsentService.maxCheckPairs {
                let person = Int(generator.next() % 50)  // 40..49 are nobody
                let purpose = purposes[Int(generator.next() % UInt64(purposes.count))]
                switch generator.next() % 4 {
                case 0 where person < 40:
                    pairs.append(
                        (
                            #"{"subject":{"subjectId":"\#(subjectIDs[person])"},"purpose":"\#(purpose)"}"#,
                            "subjectId=\(subjectIDs[person])&purpose=\(purpose)"
                        ))
                case 1:
                    pairs.append(
                        (
                            #"{"subject":{"phone":"+14155550107"},"purpose":"\#(purpose)"}"#,
                            "phone=%2B14155550107&purpose=\(purpose)"
                        ))
                default:
                    pairs.append(
                        (
                            #"{"subject":{"email":"LIST\#(person)@example.com"},"purpose":"\#(purpose)"}"#,
                            "email=list\(person)@example.com&purpose=\(purpose)"
                        ))
                }
            }
            let body = #"{"checks":["# + pairs.map(\.json).joined(separator: ",") + "]}"
            let (status, answer) = try await call(client, key, .post, "/v1/consents/check", body)
            #expect(status == .ok)
            let results = try #require(answer["results"] as? [[String: Any]])
            #expect(results.count == pairs.count)
            // Each answer as the single check gives it (a different read: one identity, one statement).
            var singles: [String: [String: Any]] = [:]
            var allowedCount = 0
            for (pair, result) in zip(pairs, results) {
                if singles[pair.query] == nil {
                    singles[pair.query] = try await call(client, key, .get, "/v1/consents/check?\(pair.query)").1
                }
                let single = try #require(singles[pair.query])
                for name in ["allowed", "status", "purpose", "recordId", "decidedAt", "basis"] {
                    #expect(
                        String(describing: result[name]) == String(describing: single[name]), "\(name) \(pair.query)")
                }
                if result["allowed"] as? Bool == true { allowedCount += 1 }
            }
            #expect(allowedCount > 100 && allowedCount < 900)  // a mix, not one answer throughout

            func refused(_ body: String) async throws -> (HTTPResponse.Status, String?, String?) {
                let (status, problem) = try await call(client, key, .post, "/v1/consents/check", body)
                return (status, problem["code"] as? String, problem["field"] as? String)
            }
            let one = #"{"subject":{"email":"a@example.com"},"purpose":"sale"}"#
            var (code, field): (String?, String?)
            var refusal: HTTPResponse.Status
            (refusal, code, field) = try await refused(
                #"{"checks":["# + Array(repeating: one, count: 1_001).joined(separator: ",") + "]}")
            #expect(refusal == .badRequest && code == "check.batch_size" && field == "checks")
            (refusal, code, _) = try await refused(#"{"checks":[]}"#)
            #expect(refusal == .badRequest && code == "check.batch_size")
            (refusal, code, field) = try await refused(
                #"{"checks":[\#(one),{"subject":{"email":"secret-person@"},"purpose":"sale"}]}"#)
            #expect(refusal == .badRequest && code == "identity.invalid_email" && field == "checks[1].subject.email")
            (refusal, code, field) = try await refused(
                #"{"checks":[\#(one),\#(one),{"subject":{"email":"a@example.com"},"purpose":"nope"}]}"#)
            #expect(refusal == .unprocessableContent && code == "purpose.unknown" && field == "checks[2].purpose")
        }
    }
}
