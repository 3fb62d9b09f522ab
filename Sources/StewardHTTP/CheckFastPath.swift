import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import StewardCore
import StewardServices

/// `GET /v1/consents/check` answered from memory, or not at all: when the key was authenticated
/// within the key cache's lifetime, its role may check, the query is one the route accepts, and the
/// resident answer set holds the subject (and is serving: its feed is current), this is the body the
/// route would answer. Anything else — an unknown key, a bad parameter, a miss, a stale feed — is nil,
/// and the request goes to the route, which reads the store, refuses, or answers the same thing.
struct MemoryCheck: Sendable {
    let consent: ConsentService
    let keys: KeyService
    /// `steward_consent_checks_inline_total`: checks answered here, without the router.
    let inline: Counter
    /// The route's `steward_http_requests_total` and duration for a 200, resolved once.
    let answered: RequestMetrics.Handles
    /// The `Server` header, as the router's answers carry it.
    let serverName: String

    static let route = "/v1/consents/check"
    static let prefix = Array("/v1/consents/check?".utf8)

    func answer(_ request: HTTPRequest) -> String? {
        guard request.method == .get, let path = request.path, path.utf8.starts(with: Self.prefix) else { return nil }
        let fields = request.headerFields
        // The route's: a request that closes its connection, or that carries a body to drain.
        if let connection = fields[.connection], connection.lowercased() != "keep-alive" { return nil }
        guard fields[.transferEncoding] == nil, (fields[.contentLength] ?? "0") == "0" else { return nil }
        guard let header = fields[.authorization], let secret = bearerToken(in: header),
            let principal = keys.rememberedPrincipal(secret: String(secret)), principal.role.allows(.consentCheck)
        else { return nil }
        let query = URI(path).queryParameters
        guard let reference = try? subjectFromQuery(query),
            let purposes = try? checkPurposes(query, policy: consent.policy),
            let checks = consent.checkFromMemory(reference, purposes: purposes)
        else { return nil }
        return purposes.count == 1 ? checkText(checks[0]) : checkSetText(checks)
    }
}

/// Answers the consent checks `MemoryCheck` can answer on the connection's event loop, as the
/// request arrives, without a task, the router or a thread hop; hands every other request on to the
/// router unchanged. While a request handed on has not been answered, every request after it on the
/// connection is handed on too, so that responses keep the order of their requests (HTTP/1.1
/// pipelining). It sits after Hummingbird's connection state handler, which sees every request and
/// response and so keeps idle timeouts and graceful shutdown as they are.
final class CheckFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let check: MemoryCheck
    /// Requests handed to the router whose response has not ended.
    private var routed = 0
    /// The request being read: answered here (its body, written at its end), or handed on.
    private var answered: (body: String, start: ContinuousClock.Instant)?
    private var unflushed = false
    private var date = HTTPDate()

    init(check: MemoryCheck) { self.check = check }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let start = ContinuousClock.now
            if routed == 0, let body = check.answer(head) {
                answered = (body, start)
                return
            }
            answered = nil
            routed += 1
        case .body:
            // Only a request without a body is answered here; its parts are never handed on.
            if answered != nil { return }
        case .end:
            if let answer = answered {
                answered = nil
                respond(context: context, body: answer.body, start: answer.start)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func respond(context: ChannelHandlerContext, body: String, start: ContinuousClock.Instant) {
        let buffer = context.channel.allocator.buffer(string: body)
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(buffer.readableBytes)
        head.headerFields[requestIDField] = RequestID().description
        head.headerFields[.date] = date.now()
        head.headerFields[.server] = check.serverName
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        unflushed = true
        check.answered.record(since: start)
        check.inline.increment()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush for every answer of the read (a pipelining client's requests arrive together).
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routed = max(0, routed - 1) }
        context.write(data, promise: promise)
    }
}

/// The `Date` header's value (RFC 9110 §5.6.7, IMF-fixdate), formatted once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""

    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> String {
        var clock = time(nil)
        guard clock != second else { return text }
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        text =
            "\(Self.days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(Self.months[Int(parts.tm_mon)]) "
            + "\(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
        second = clock
        return text
    }
}

/// Hummingbird's HTTP/1.1 child channel, with `BodyReadDeadline` and, when the consent check has an
/// answer set, `CheckFastPath` after the connection state handler (Hummingbird's own
/// `additionalChannelHandlers` go before it, where the state handler would not see the requests
/// answered here and would close a busy connection as idle).
struct StewardHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let limits: HTTPLimits
    let fastPath: MemoryCheck?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let decoder = HTTP1Channel.Configuration.DecoderConfiguration()
            var limitsConfiguration = NIOHTTPDecoderLimitConfiguration()
            limitsConfiguration.maxHeaderFieldSize = decoder.maxHeaderFieldSize
            limitsConfiguration.maxHeaderListSize = decoder.maxHeaderListSize
            limitsConfiguration.maxHeaderFieldCount = decoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            // As `HTTP1Channel` configures it: pipelining is ordered by the async channel.
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limitsConfiguration)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(BodyReadDeadline(timeout: TimeAmount(limits.bodyTimeout)))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: limits.idleTimeout, logger: logger))
            if let fastPath { try pipeline.addHandler(CheckFastPath(check: fastPath)) }
            return try NIOAsyncChannel(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}
