import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import StewardConnectors
import StewardCore
import StewardHTTP
import StewardPolicy
import StewardServices
import StewardTesting
import Synchronization
import Testing

/// An http system (issue 18 item 4, ADR 0012): a help desk served on loopback by a real HTTP
/// server of the test's own, which checks every delivery's signature with its own HMAC code, and
/// answers at once (access), or takes the work on and calls Steward back (erasure) — signed, on
/// Steward's live server. Steward on the backend `Scripts/test.sh` selects.
@Suite struct HTTPSystems {
    static let helpdesk = """
        version: 1
        key: helpdesk
        name: Help desk
        kind: http
        connection:
          env: STEWARD_HELPDESK_URL
        secret:
          env: STEWARD_HELPDESK_SECRET
        owner: customer-success
        purposes: [service.transactional_email]
        collections:
          - name: tickets
            primary_key: id
            fields:
              - name: id
                category: system.operations
              - name: requester_email
                category: user.contact.email
                identity: email
                erasure: delete_row
              - name: body
                category: user.content
                erasure: delete_row
        """

    /// The shipped policy with one system, the help desk.
    static func policyDirectory() throws -> URL {
        let shipped = BuiltBinary.packageRoot.appendingPathComponent("Policies")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-http-\(UUID())")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("systems"), withIntermediateDirectories: true)
        for file in ["purposes.yaml", "taxonomy.yaml", "requests.yaml", "organisation.yaml"] {
            try FileManager.default.copyItem(
                at: shipped.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        try helpdesk.write(
            to: directory.appendingPathComponent("systems/helpdesk.yaml"), atomically: true, encoding: .utf8)
        return directory
    }

    /// What the help desk received, and how it answers the next delivery.
    final class Desk: Sendable {
        struct Delivery: Sendable {
            var data: Data
            var idempotencyKey: String?
            var signatureValid: Bool

            var body: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
        }

        enum Mode: Sendable {
            /// 200 with the report at once.
            case answer
            /// 202, then a signed callback that completes (or reports failure with `reason`).
            case callBack(failure: String?)
            /// A 4xx: refused.
            case refuse
            /// 202, and never a callback.
            case silent
        }

        let received = Mutex<[Delivery]>([])
        let mode = Mutex<Mode>(.answer)
        /// Steward's port, for callbacks; the callbacks' answers.
        let steward = Mutex<Int?>(nil)
        let callbacks = Mutex<[(status: Int, body: String)]>([])
    }

    /// The help desk's own check: HMAC-SHA-256 of "<t>.<body>", written without Steward's code.
    static func independentlyValid(_ header: String?, body: Data, secret: String) -> Bool {
        guard let header else { return false }
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        guard let t = fields["t"], let v1 = fields["v1"], let seconds = Double(t),
            abs(Date().timeIntervalSince1970 - seconds) < 300
        else { return false }
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(t).".utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
        return v1 == code.map { String(format: "%02x", $0) }.joined()
    }

    static func sign(_ body: Data, secret: String, at time: Date = Date()) -> String {
        let t = Int64(time.timeIntervalSince1970)
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(t).".utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(t),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }

    static func callback(
        port: Int, request: String, body: String, signature: String?
    ) async throws -> (status: Int, body: String) {
        var call = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/requests/\(request)/callbacks/helpdesk")
        call.method = .POST
        call.headers.add(name: "Content-Type", value: "application/json")
        if let signature { call.headers.add(name: "Steward-Signature", value: signature) }
        call.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(call, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), text)
    }

    /// The help desk: checks each delivery, records it, and answers by its mode.
    static func deskRouter(_ desk: Desk, secret: String) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/steward") { request, _ -> Response in
            var request = request
            let data = Data(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            let body = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            let valid = independentlyValid(request.headers[.init("Steward-Signature")!], body: data, secret: secret)
            desk.received.withLock {
                $0.append(
                    .init(data: data, idempotencyKey: request.headers[.init("Idempotency-Key")!], signatureValid: valid)
                )
            }
            guard valid else { return Response(status: .unauthorized) }
            let delivery = body["delivery"] as? String ?? ""
            let id = body["request"] as? String ?? ""
            switch desk.mode.withLock({ $0 }) {
            case .refuse:
                return Response(status: .badRequest)
            case .silent:
                return Response(status: .accepted)
            case .answer where body["type"] as? String == "rectification":
                let report =
                    #"{"delivery":"\#(delivery)","status":"completed","verified":true,"collections":[{"name":"tickets","located":2,"changed":2}]}"#
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: report)))
            case .answer:
                let report =
                    body["type"] as? String == "access"
                    ? """
                    {"delivery":"\(delivery)","status":"completed","verified":true,
                     "collections":[{"name":"tickets","located":2,"read":2}],
                     "rows":{"tickets":[{"id":"t-1","requester_email":"x","body":"printer on fire"},{"id":"t-2","requester_email":"x","body":null}]}}
                    """
                    : #"{"delivery":"\#(delivery)","status":"completed","verified":true,"collections":[{"name":"tickets","located":1,"deleted":1}]}"#
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: report)))
            case .callBack(let failure):
                let report =
                    failure.map { #"{"delivery":"\#(delivery)","status":"failed","reason":"\#($0)"}"# }
                    ?? #"{"delivery":"\#(delivery)","status":"completed","verified":true,"collections":[{"name":"tickets","located":3,"deleted":3}]}"#
                Task {
                    try await Task.sleep(for: .milliseconds(50))
                    guard let port = desk.steward.withLock({ $0 }) else { return }
                    // As a system should: a failure reported while Steward still finishes sending the
                    // delivery is answered "call back again shortly" (409), and is sent again.
                    for _ in 0..<100 {
                        let answer = try await callback(
                            port: port, request: id, body: report, signature: sign(Data(report.utf8), secret: secret))
                        if answer.status == 409 && answer.body.contains("call back again shortly") {
                            try await Task.sleep(for: .milliseconds(50))
                            continue
                        }
                        desk.callbacks.withLock { $0.append(answer) }
                        return
                    }
                }
                return Response(status: .accepted)
            }
        }
        return router
    }

    @Test func anHTTPSystemReceivesASignedRequestAndItsCallbackCompletesTheTask() async throws {
        let directory = try Self.policyDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = try PolicyLoader.load(directory: directory.path) { _ in "digest" }
        let secret = "helpdesk-secret-" + String(repeating: "k", count: 32)
        let desk = Desk()
        let deskApp = Application(
            router: Self.deskRouter(desk, secret: secret),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await deskApp.test(.live) { deskClient in
            let deskPort = try #require(deskClient.port)
            let systems = CustomerSystems(
                policies: directory.path,
                environment: [
                    "STEWARD_HELPDESK_URL": "http://127.0.0.1:\(deskPort)/steward",
                    "STEWARD_HELPDESK_SECRET": secret,
                ])
            let map = policy.dataMap
            let deliver: StewardServices.RequestExecution.Deliver = { system, delivery, identities in
                let declared = try #require(map.system(system))
                guard case .http(let endpoint) = try systems.connection(declared) else {
                    throw ConnectorError("not http")
                }
                return try await HTTPSystemClient(system: declared, map: map, endpoint: endpoint)
                    .deliver(delivery, identities: identities)
            }
            let execute: StewardServices.RequestExecution.Execute = { _, _, _, _, _, _ in
                throw ConnectorError("no SQL system in this map")
            }
            try await withHarness(policy: policy) { h in
                let api = h.api(customerSystems: systems, requestExecute: execute, requestDeliver: deliver)
                let service = api.requests
                let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
                try await app.test(.live) { client in
                    let port = try #require(client.port)
                    desk.steward.withLock { $0 = port }
                    func runJobs() async throws {
                        try await JobRunner(
                            store: h.store, runtime: h.runtime, configuration: .init(pollInterval: .milliseconds(20)),
                            untilIdle: true, logger: Logger(label: "test")
                        ).registering(RequestTaskJob(service: service)).run()
                    }
                    func waitFor(_ id: UUID, _ status: RequestStatus) async throws {
                        for _ in 0..<200 where try await service.request(id).status != status {
                            try await Task.sleep(for: .milliseconds(25))
                        }
                    }
                    let email = try NormalizedIdentity(kind: .email, raw: "ada@example.com")

                    // Access: the desk answers at once with the rows; the task completes.
                    let access = try await service.submit(
                        regime: "gdpr", type: .access, identities: [email], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: access.id, actor: "officer")
                    try await runJobs()
                    let first = try #require(desk.received.withLock { $0.first })
                    #expect(first.signatureValid, "signed with the shared secret over the timestamp and body")
                    #expect(first.idempotencyKey == first.body["delivery"] as? String)
                    #expect(first.body["request"] as? String == access.id.lowercasedString)
                    #expect(first.body["type"] as? String == "access")
                    #expect((first.body["identities"] as? [String: [String]])?["email"] == ["ada@example.com"])
                    let collections = try #require(first.body["collections"] as? [[String: Any]])
                    #expect(collections.map { $0["name"] as? String } == ["tickets"])
                    #expect(collections.first?["action"] as? String == "read")
                    #expect(
                        first.body["callbackPath"] as? String
                            == "/v1/requests/\(access.id.lowercasedString)/callbacks/helpdesk")
                    let accessed = try await service.request(access.id)
                    #expect(accessed.status == .completed)
                    let accessTask = try #require(try await service.tasks(of: access.id).first?.task)
                    let rows = try #require(try service.rows(of: accessTask, request: accessed))
                    #expect(rows.collections["tickets"]?.count == 2)
                    #expect(rows.collections["tickets"]?.first?["body"] == "printer on fire")
                    let accessReceipt = try JSONDecoder().decode(
                        SystemReceipt.self, from: Data(try #require(accessTask.receipt).utf8))
                    #expect(accessReceipt.reportedBy == "system" && accessReceipt.collections.first?.read == 2)

                    // Rectification: the desk is told which fields to set, and to what.
                    let rectification = try await service.submit(
                        regime: "gdpr", type: .rectification, identities: [email], verified: .preVerified,
                        corrections: [Correction(category: "user.contact.email", value: "ada@example.org")],
                        actor: "key:shop")
                    _ = try await service.apply(.approve, to: rectification.id, actor: "officer")
                    try await runJobs()
                    let told = try #require(desk.received.withLock { $0.last })
                    #expect(told.signatureValid && told.body["type"] as? String == "rectification")
                    let correct = try #require((told.body["collections"] as? [[String: Any]])?.first)
                    #expect(correct["action"] as? String == "correct")
                    #expect(correct["fields"] as? [String: String] == ["requester_email": "correct"])
                    #expect(correct["values"] as? [String: String] == ["requester_email": "ada@example.org"])
                    #expect(try await service.request(rectification.id).status == .completed)
                    let corrected = try JSONDecoder().decode(
                        SystemReceipt.self,
                        from: Data(try #require(try await service.tasks(of: rectification.id).first?.task.receipt).utf8)
                    )
                    #expect(corrected.collections.first?.changed == 2)
                    #expect(corrected.collections.first?.fields == ["requester_email": "corrected"])

                    // Erasure: the desk takes it on (202) and calls back; the callback completes the task.
                    desk.mode.withLock { $0 = .callBack(failure: nil) }
                    let erasure = try await service.submit(
                        regime: "gdpr", type: .erasure, identities: [email], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: erasure.id, actor: "officer")
                    try await runJobs()
                    try await waitFor(erasure.id, .completed)
                    for _ in 0..<200 where desk.callbacks.withLock({ $0.isEmpty }) {
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    let second = try #require(desk.received.withLock { $0.last })
                    #expect(second.signatureValid && second.body["type"] as? String == "erasure")
                    #expect(
                        (second.body["collections"] as? [[String: Any]])?.first?["action"] as? String == "delete_row")
                    #expect(desk.callbacks.withLock { $0.map(\.status) } == [200])
                    #expect(desk.callbacks.withLock { $0.first?.body.contains("\"recorded\"") } == true)
                    let erased = try await service.request(erasure.id)
                    #expect(erased.status == .completed)
                    let erasureTask = try #require(try await service.tasks(of: erasure.id).first)
                    #expect(erasureTask.task.state == .done)
                    #expect(erasureTask.job?.state == .succeeded)
                    let receipt = try JSONDecoder().decode(
                        SystemReceipt.self, from: Data(try #require(erasureTask.task.receipt).utf8))
                    #expect(receipt.collections.first?.deleted == 3 && receipt.reportedBy == "system")
                    let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
                    #expect(
                        audit.contains {
                            $0.draft.action == "request.erasure_receipt" && $0.draft.actor == "system:helpdesk"
                        })
                    #expect(
                        audit.contains {
                            $0.draft.action == "request.complete" && $0.draft.targetID == erasure.id.lowercasedString
                        })

                    // Callbacks that are not the system's, or not about its delivery, change nothing.
                    let delivery = try #require(second.body["delivery"] as? String)
                    let good = #"{"delivery":"\#(delivery)","status":"completed","collections":[]}"#
                    let target = erasure.id.lowercasedString
                    for (signature, expected) in [
                        (nil, 401), ("t=1,v1=00", 401),
                        (Self.sign(Data(good.utf8), secret: "another-secret-of-32-bytes-or-more!!"), 401),
                        (Self.sign(Data(good.utf8), secret: secret, at: Date().addingTimeInterval(-600)), 401),
                        (Self.sign(Data((good + " ").utf8), secret: secret), 401),
                    ] as [(String?, Int)] {
                        let answer = try await Self.callback(
                            port: port, request: target, body: good, signature: signature)
                        #expect(answer.status == expected, "\(signature ?? "unsigned")")
                        #expect(answer.body.contains("request.signature_invalid"))
                    }
                    // Refused before the body is read: an unsigned callback announcing more than any answer
                    // Steward reads is 401, not 413, answered without its body ever being sent (a raw
                    // socket: an HTTP client sending 17 MiB may see the early answer as a closed channel).
                    let raw = try ConnectionLimits.RawConnection(port: port)
                    raw.send(
                        "POST /v1/requests/\(target)/callbacks/helpdesk HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            + "Content-Type: application/json\r\nContent-Length: \(17 << 20)\r\n\r\n{\"delivery\":")
                    let early = raw.readUntilClosed(seconds: 3).text
                    #expect(early.hasPrefix("HTTP/1.1 401"), "\(early.prefix(200))")
                    #expect(early.contains("request.signature_invalid"))
                    // An API key is not a system's signature.
                    let admin = try await h.key(.admin)
                    let keyed = try await client.execute(
                        uri: "/v1/requests/\(target)/callbacks/helpdesk", method: .post,
                        headers: [.authorization: "Bearer \(admin)", .contentType: "application/json"],
                        body: ByteBuffer(string: good))
                    #expect(keyed.status == .unauthorized)
                    // A repeat of the recorded callback is answered, and changes nothing.
                    let repeated = try await Self.callback(
                        port: port, request: target, body: good, signature: Self.sign(Data(good.utf8), secret: secret))
                    #expect(repeated.status == 200 && repeated.body.contains("already_recorded"))

                    // A failure reported by callback: the task needs attention; a retry sends a new delivery.
                    desk.mode.withLock { $0 = .callBack(failure: "account_locked") }
                    let grace = try NormalizedIdentity(kind: .email, raw: "grace@example.com")
                    let failing = try await service.submit(
                        regime: "gdpr", type: .erasure, identities: [grace], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: failing.id, actor: "officer")
                    try await runJobs()
                    var job: JobRecord?
                    for _ in 0..<200 {
                        job = try await service.tasks(of: failing.id).first?.job
                        if job?.state == .needsAttention { break }
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    #expect(job?.state == .needsAttention)
                    #expect(job?.lastError?.hasPrefix("connector.system_failed") == true)
                    #expect(try await service.request(failing.id).status == .executing)
                    let failedDelivery = try #require(desk.received.withLock { $0.last?.body["delivery"] as? String })
                    // A stale delivery id is refused.
                    let stale = #"{"delivery":"\#(UUID().uuidString)","status":"completed","collections":[]}"#
                    let staleAnswer = try await Self.callback(
                        port: port, request: failing.id.lowercasedString, body: stale,
                        signature: Self.sign(Data(stale.utf8), secret: secret))
                    #expect(staleAnswer.status == 409 && staleAnswer.body.contains("request.callback_stale"))
                    desk.mode.withLock { $0 = .answer }
                    _ = try await api.jobs.retry(id: try #require(job?.id), actor: "officer", audit: api.audit)
                    try await runJobs()
                    #expect(try await service.request(failing.id).status == .completed)
                    let retried = try #require(desk.received.withLock { $0.last })
                    #expect(retried.body["delivery"] as? String != failedDelivery, "a new delivery after a failure")
                    #expect(retried.idempotencyKey == retried.body["delivery"] as? String)

                    // A refusal (4xx) needs attention at once: no retry loop against a system that said no.
                    desk.mode.withLock { $0 = .refuse }
                    let refused = try await service.submit(
                        regime: "gdpr", type: .access, identities: [grace], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: refused.id, actor: "officer")
                    try await runJobs()
                    let refusedJob = try #require(try await service.tasks(of: refused.id).first?.job)
                    #expect(refusedJob.state == .needsAttention && refusedJob.attempts == 1)
                    #expect(refusedJob.lastError == "connector.refused: system 'helpdesk' refused the delivery (400)")

                    // Taken on and never called back: after the system's callback_within (default 7
                    // days) the task needs attention, once, audited; a late callback is stale.
                    desk.mode.withLock { $0 = .silent }
                    let silent = try await service.submit(
                        regime: "gdpr", type: .erasure, identities: [grace], verified: .preVerified, actor: "key:shop")
                    _ = try await service.apply(.approve, to: silent.id, actor: "officer")
                    try await runJobs()
                    let silentDelivery = try #require(desk.received.withLock { $0.last?.body["delivery"] as? String })
                    #expect(try await service.chaseOverdueCallbacks(actor: "steward").isEmpty)
                    h.clock.advance(by: 7 * 86_400 - 60)
                    #expect(try await service.chaseOverdueCallbacks(actor: "steward").isEmpty, "not yet")
                    h.clock.advance(by: 61)
                    let chased = try await service.chaseOverdueCallbacks(actor: "steward")
                    #expect(chased.map(\.request) == [silent.id] && chased.map(\.system) == ["helpdesk"])
                    #expect(try await service.chaseOverdueCallbacks(actor: "steward").isEmpty, "once")
                    let overdueJob = try #require(try await service.tasks(of: silent.id).first?.job)
                    #expect(overdueJob.state == .needsAttention)
                    #expect(overdueJob.lastError?.hasPrefix("connector.callback_overdue: system 'helpdesk'") == true)
                    #expect(try await service.request(silent.id).status == .executing)
                    let overdueAudit = try await h.store.read {
                        try await $0.auditEntries(afterSequence: 0, limit: 1_000)
                    }
                    #expect(
                        overdueAudit.contains {
                            $0.draft.action == "request.callback_overdue"
                                && $0.draft.targetID == silent.id.lowercasedString
                        })
                    let late = #"{"delivery":"\#(silentDelivery)","status":"completed","collections":[]}"#
                    let lateAnswer = try await Self.callback(
                        port: port, request: silent.id.lowercasedString, body: late,
                        signature: Self.sign(Data(late.utf8), secret: secret))
                    #expect(lateAnswer.status == 409 && lateAnswer.body.contains("request.callback_stale"))
                    // No identity of anyone in a job's record.
                    for record in try await h.store.read({ try await $0.jobs(JobFilter(limit: 100)) }) {
                        let text =
                            "\(record.payload)\(record.cursor ?? "")\(record.result ?? "")\(record.lastError ?? "")"
                        #expect(!text.contains("example.com"))
                    }
                }
            }
        }
    }

    /// Status webhooks (issue 18 item 2): every status change is one signed POST, sent by the job
    /// queue; a receiver that refuses leaves the job needing attention.
    @Test func statusChangesAreSentAsSignedWebhooks() async throws {
        let policy = try PolicyLoader.load(
            directory: BuiltBinary.packageRoot.appendingPathComponent("Policies").path
        ) { _ in "digest" }
        let secret = "webhook-secret-" + String(repeating: "w", count: 32)
        let received = Mutex<[(body: [String: String], key: String?, valid: Bool)]>([])
        let refuse = Mutex(false)
        let router = Router()
        router.post("/hooks") { request, _ -> Response in
            var request = request
            let data = Data(try await request.collectBody(upTo: 1 << 16).readableBytesView)
            let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: String] ?? [:]
            let valid = Self.independentlyValid(
                request.headers[.init("Steward-Signature")!], body: data, secret: secret)
            received.withLock { $0.append((body, request.headers[.init("Idempotency-Key")!], valid)) }
            return Response(status: refuse.withLock { $0 } ? .badRequest : .noContent)
        }
        let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await receiver.test(.live) { receiverClient in
            let client = try WebhookClient(
                url: "http://127.0.0.1:\(try #require(receiverClient.port))/hooks", secret: Data(secret.utf8))
            try await withHarness(policy: policy) { h in
                let api = h.api(requestWebhooks: true)
                let service = api.requests
                func runJobs() async throws {
                    try await JobRunner(
                        store: h.store, runtime: h.runtime, configuration: .init(pollInterval: .milliseconds(20)),
                        untilIdle: true, logger: Logger(label: "test")
                    ).registering(RequestWebhookJob { body, key in try await client.send(body, idempotencyKey: key) })
                        .run()
                }
                // A CCPA opt-out: received, approved by rule, completed — three notices.
                let phone = try NormalizedIdentity(kind: .phone, raw: "+14155550123")
                let optOut = try await service.submit(
                    regime: "ccpa", type: .optOutSale, identities: [phone], actor: "key:shop")
                #expect(optOut.status == .completed)
                try await runJobs()
                let notices = received.withLock { $0 }
                #expect(notices.count == 3 && notices.allSatisfy(\.valid), "signed with the webhook secret")
                #expect(
                    Set(notices.map { $0.body["action"] ?? "" }) == [
                        "request.received", "request.approve", "request.complete",
                    ])
                #expect(notices.allSatisfy { $0.body["request"] == optOut.id.lowercasedString })
                #expect(notices.first { $0.body["action"] == "request.complete" }?.body["to"] == "completed")
                #expect(Set(notices.compactMap(\.key)).count == 3, "one idempotency key per notice")
                #expect(!notices.contains { "\($0.body)".contains("4155550123") }, "ids and statuses only")

                // A receiver that refuses: the job needs attention, the change stays made.
                refuse.withLock { $0 = true }
                _ = try await service.submit(regime: "ccpa", type: .optOutSale, identities: [phone], actor: "key:shop")
                try await runJobs()
                let failed = try await h.store.read {
                    try await $0.jobs(JobFilter(states: [.needsAttention], kind: RequestWebhookJob.kind))
                }
                #expect(failed.count == 3 && failed.allSatisfy { $0.lastError?.hasPrefix("connector.refused") == true })
            }
        }
    }
}
