import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import StewardCore
import StewardHTTP
import StewardServices
import StewardTesting
import Testing

/// Issue 19: a consent check the resident answer set holds is answered on the connection's event
/// loop (`CheckFastPath`), exactly as the route answers it; everything else — a miss, a stale feed,
/// a refusal — is the route's. Over HTTP on loopback, on the backend `Scripts/test.sh` selects.
@Suite struct CheckFastPathRoutes {
    struct Served {
        let h: Harness
        let api: StewardAPI
        let key: String
        let client: any TestClientProtocol
    }

    static func withServer(limits: HTTPLimits = HTTPLimits(), _ body: @escaping @Sendable (Served) async throws -> Void)
        async throws
    {
        try await withHarness { h in
            let api = h.api(answerCacheBytes: 4 << 20)
            let answers = try #require(api.consent.answers)
            answers.setServing(true)  // no follower here: this instance's own writes keep it current
            let app = buildApplication(api: api, host: "127.0.0.1", port: 0, limits: limits, logger: testLogger)
            let key = try await api.keys.create(name: "fast", role: .service, actor: "test").secret
            try await app.test(.live) { client in try await body(Served(h: h, api: api, key: key, client: client)) }
        }
    }

    struct Answer {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: String
    }

    static func get(_ s: Served, _ uri: String, key: String? = nil) async throws -> Answer {
        var fields: HTTPFields = [:]
        if let key = key ?? Optional(s.key), !key.isEmpty { fields[.authorization] = "Bearer \(key)" }
        let response = try await s.client.execute(uri: uri, method: .get, headers: fields, body: nil)
        return Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    static func post(_ s: Served, _ uri: String, _ body: String) async throws -> HTTPResponse.Status {
        try await s.client.execute(
            uri: uri, method: .post, headers: [.contentType: "application/json", .authorization: "Bearer \(s.key)"],
            body: ByteBuffer(string: body)
        ).status
    }

    /// `steward_consent_checks_inline_total`, as `/metrics` serves it.
    static func inline(_ s: Served) async throws -> Int {
        let text = String(decoding: s.api.registry.emitToBuffer(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("steward_consent_checks_inline_total ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
    }

    static let notice = #""notice":{"id":"privacy-policy","version":"2026-01"}"#

    static func names(_ fields: HTTPFields) -> Set<String> { Set(fields.map { $0.name.canonicalName }) }

    @Test func aCheckInMemoryIsAnsweredAsTheRouteAnswersIt() async throws {
        try await Self.withServer { s in
            #expect(
                try await Self.post(
                    s, "/v1/consents",
                    #"{"subject":{"email":"fast@example.com"},"decisions":{"analytics":"granted","sale":"denied"},\#(Self.notice)}"#
                ) == .created)
            let answers = try #require(s.api.consent.answers)
            var counted = try await Self.inline(s)
            for query in [
                "email=fast@example.com&purpose=analytics", "email=FAST@example.com&purpose=sale&purpose=analytics",
                "email=fast@example.com", "email=nobody@example.com&purpose=analytics",
                "email=nobody@example.com",
            ] {
                // The route's answer: first with the set not serving (read from the store), then a miss
                // that the route fills; then the same from memory, here.
                answers.invalidateAll()
                answers.setServing(false)
                let stored = try await Self.get(s, "/v1/consents/check?\(query)")
                answers.setServing(true)
                let filled = try await Self.get(s, "/v1/consents/check?\(query)")
                #expect(try await Self.inline(s) == counted, "\(query): neither is answered inline")
                let fast = try await Self.get(s, "/v1/consents/check?\(query)")
                counted += 1
                #expect(try await Self.inline(s) == counted, "\(query): answered inline")
                #expect(stored.status == .ok && fast.status == .ok, "\(query)")
                #expect(fast.body == stored.body && fast.body == filled.body, "\(query)")
                #expect(Self.names(fast.headers) == Self.names(stored.headers), "\(query)")
                #expect(fast.headers[.contentType] == "application/json")
                #expect(fast.headers[.contentLength] == String(fast.body.utf8.count))
                #expect(
                    fast.headers[HTTPField.Name("X-Request-Id")!] != stored.headers[HTTPField.Name("X-Request-Id")!])
            }

            // A withdrawal on this instance is answered by its next check.
            #expect(
                try await Self.post(
                    s, "/v1/consents",
                    #"{"subject":{"email":"fast@example.com"},"purpose":"analytics","decision":"withdrawn"}"#)
                    == .created)
            for _ in 0..<2 {
                let after = try await Self.get(s, "/v1/consents/check?email=fast@example.com&purpose=analytics")
                #expect(after.body.contains(#""allowed":false"#) && after.body.contains(#""status":"withdrawn""#))
            }
            counted = try await Self.inline(s)

            // Refusals are the route's, with its problem: an unknown or empty purpose, no subject, too
            // many purposes, no key, a key whose role may not check, a revoked key.
            let refusals: [(String, String?, HTTPResponse.Status, String)] = [
                ("email=fast@example.com&purpose=nope", nil, .unprocessableContent, "purpose.unknown"),
                ("email=fast@example.com&purpose=", nil, .badRequest, "purpose.missing"),
                ("purpose=analytics", nil, .badRequest, "subject.missing"),
                (
                    "email=fast@example.com&phone=%2B14155550100&purpose=analytics", nil, .badRequest,
                    "subject.ambiguous"
                ),
                (
                    "email=fast@example.com"
                        + String(repeating: "&purpose=analytics", count: s.h.policy.purposes.count + 1), nil,
                    .badRequest, "purpose.missing"
                ),
                ("email=fast@example.com&purpose=analytics", "", .unauthorized, "auth.unauthenticated"),
                (
                    "email=fast@example.com&purpose=analytics",
                    try await s.api.keys.create(name: "audit", role: .auditor, actor: "test").secret, .forbidden,
                    "auth.forbidden"
                ),
            ]
            for (query, key, status, code) in refusals {
                let refused = try await Self.get(s, "/v1/consents/check?\(query)", key: key)
                #expect(refused.status == status, "\(query)")
                #expect(refused.body.contains(#""code":"\#(code)""#), "\(query): \(refused.body)")
            }
            // A key is answered here once the route has authenticated it, and not after it is revoked.
            let (record, secret) = try await s.api.keys.create(name: "gone", role: .service, actor: "test")
            for _ in 0..<2 {
                #expect(
                    try await Self.get(s, "/v1/consents/check?email=fast@example.com&purpose=sale", key: secret).status
                        == .ok)
            }
            _ = try await s.api.keys.revoke(id: record.id, actor: "test")
            #expect(
                try await Self.get(s, "/v1/consents/check?email=fast@example.com&purpose=sale", key: secret).status
                    == .unauthorized)
            #expect(try await Self.inline(s) == counted + 1)
        }
    }

    /// Responses keep the order of their requests: a check that could be answered here waits behind a
    /// request the router is still answering on the same connection.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Self.withServer { s in
            #expect(
                try await Self.post(
                    s, "/v1/consents",
                    #"{"subject":{"email":"pipe@example.com"},"purpose":"analytics","decision":"granted",\#(Self.notice)}"#
                ) == .created)
            _ = try await Self.get(s, "/v1/consents/check?email=pipe@example.com&purpose=analytics")  // now held
            let before = try await Self.inline(s)
            let port = try #require(s.client.port)
            let check =
                "GET /v1/consents/check?email=pipe@example.com&purpose=analytics HTTP/1.1\r\nHost: x\r\n"
                + "Authorization: Bearer \(s.key)\r\n\r\n"
            let record =
                #"{"subject":{"email":"pipe2@example.com"},"purpose":"analytics","decision":"denied"}"#
            let post =
                "POST /v1/consents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(s.key)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(record.utf8.count)\r\n\r\n\(record)"
            let close = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

            // Two checks answered here, then a record (the router's), a check behind it, and the close.
            let connection = try ConnectionLimits.RawConnection(port: port)
            connection.send(check + check + post + check + close)
            let (text, closed) = try await BuiltBinary.offPool { connection.readUntilClosed(seconds: 10) }
            #expect(closed)
            let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "201", "200", "200"], "\(text)")
            let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.prefix(12) }
            #expect(bodies.filter { $0.hasPrefix(#"{"allowed":t"#) }.count == 3, "\(text)")
            #expect(text.range(of: #""status":"ok""#) != nil)
            // The check after the record waited for it and was the router's.
            #expect(try await Self.inline(s) == before + 2)
        }
    }

    /// Requests answered here are seen by the connection's idle timer: a busy connection stays open, an
    /// idle one is closed.
    @Test func aConnectionBusyWithChecksAnsweredHereIsNotClosedAsIdle() async throws {
        // Idle after 2 s; a check every 200 ms for twice that long (room for a loaded machine's pauses).
        try await Self.withServer(limits: HTTPLimits(idleTimeout: .seconds(2))) { s in
            #expect(
                try await Self.post(
                    s, "/v1/consents",
                    #"{"subject":{"email":"busy@example.com"},"purpose":"analytics","decision":"granted",\#(Self.notice)}"#
                ) == .created)
            _ = try await Self.get(s, "/v1/consents/check?email=busy@example.com&purpose=analytics")
            let before = try await Self.inline(s)
            let connection = try ConnectionLimits.RawConnection(port: try #require(s.client.port))
            let check =
                "GET /v1/consents/check?email=busy@example.com&purpose=analytics HTTP/1.1\r\nHost: x\r\n"
                + "Authorization: Bearer \(s.key)\r\n\r\n"
            let started = ContinuousClock.now
            var answered = 0
            var last = started
            while ContinuousClock.now - started < .seconds(4) {
                connection.send(check)
                let text = try await BuiltBinary.offPool { connection.readResponse() }
                let now = ContinuousClock.now
                #expect(
                    text.hasPrefix("HTTP/1.1 200") && text.contains(#""allowed":true"#),
                    "answer \(answered + 1), \(now - last) after the last, errno \(errno): '\(text)'")
                last = now
                answered += 1
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(answered >= 8)
            #expect(try await Self.inline(s) == before + answered)
            let idle = try await BuiltBinary.offPool { connection.readUntilClosed(seconds: 10) }
            #expect(idle.closed && idle.text.isEmpty)
        }
    }
}

extension ConnectionLimits.RawConnection {
    /// Reads one response with a `Content-Length` body (what arrives within 10 s).
    func readResponse() -> String {
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                let length =
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count - text[..<end.upperBound].utf8.count >= length { return text }
            }
            let count = read(socket, &buffer, buffer.count)
            guard count > 0 else { return text }
            received += buffer[0..<count]
        }
    }
}
