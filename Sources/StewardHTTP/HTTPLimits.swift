public import Foundation
import Synchronization
import HTTPTypes
public import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Server-wide limits that keep one client — or a few thousand — from taking the server's
/// connections or memory. Each has an environment variable (`Docs/Configuration.md`).
public struct HTTPLimits: Sendable, Equatable {
    /// Connections held open at once; past it the server stops accepting until one closes.
    public var maxConnections: Int
    /// How long a connection may sit without a request in progress — idle keep-alive, or a client
    /// still sending its request head — before it is closed.
    public var idleTimeout: Duration
    /// How long a request's body may take to arrive, from its head to its end.
    public var bodyTimeout: Duration
    /// Connections the kernel may queue before the server accepts them (capped by
    /// `net.core.somaxconn`). Hummingbird's 256 dropped the handshakes of a burst of connections.
    public var backlog = 4_096

    public init(
        maxConnections: Int = 4_096, idleTimeout: Duration = .seconds(30), bodyTimeout: Duration = .seconds(120)
    ) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// From `STEWARD_HTTP_MAX_CONNECTIONS`, `STEWARD_HTTP_IDLE_TIMEOUT` and `STEWARD_HTTP_BODY_TIMEOUT`
    /// (seconds); a value that is not a positive number is refused, naming the variable.
    public init(environment: [String: String]) throws {
        self.init()
        func positive(_ name: String, atMost limit: Double) throws -> Double? {
            guard let text = environment[name] else { return nil }
            guard let value = Double(text), value > 0, value <= limit else {
                throw HTTPLimitsError(
                    description: "\(name) must be a positive number up to \(Int(limit)), not '\(text)'")
            }
            return value
        }
        if let value = try positive("STEWARD_HTTP_MAX_CONNECTIONS", atMost: 1_000_000) { maxConnections = Int(value) }
        if let value = try positive("STEWARD_HTTP_IDLE_TIMEOUT", atMost: 86_400) {
            idleTimeout = .milliseconds(Int64(value * 1_000))
        }
        if let value = try positive("STEWARD_HTTP_BODY_TIMEOUT", atMost: 86_400) {
            bodyTimeout = .milliseconds(Int64(value * 1_000))
        }
    }
}

public struct HTTPLimitsError: Error, CustomStringConvertible {
    public var description: String
}

/// Closes a connection whose request body has not fully arrived `timeout` after its head: a client
/// trickling a body holds a connection and a handler task otherwise for as long as it likes.
/// (A request head that trickles is an idle connection to Hummingbird's idle timeout, which closes it.)
final class BodyReadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// When the head of a request whose end has not arrived yet was read.
    private var headReadAt: NIODeadline?
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            disarm()
            headReadAt = .now()
        case .body: break
        case .end: disarm()
        }
        context.fireChannelRead(data)
    }

    /// The timer is armed only for a request still open when a read ends: a request without a body
    /// (every consent check) arrives head and end in one read and never schedules one.
    func channelReadComplete(context: ChannelHandlerContext) {
        if let headReadAt, deadline == nil {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(deadline: headReadAt + timeout) { channel.close(promise: nil) }
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // A response may end the request before its body is read (an early 401 or 413).
        if case .end = unwrapOutboundIn(data) { disarm() }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
        headReadAt = nil
    }
}

extension HTTPLimits {
    /// HTTP/1.1 with these limits, and consent checks answered from memory by `fastPath` when given.
    func server(fastPath: MemoryCheck?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in StewardHTTP1Channel(responder: responder, limits: self, fastPath: fastPath) }
    }
}

/// What `POST /v1/consents/bulk` may hold: its body, and how many run at once. Memory for bulk work
/// is about `maxBytes` x `concurrent` plus one batch each.
public struct BulkLimits: Sendable, Equatable {
    public var maxBytes: Int
    public var concurrent: Int

    public init(maxBytes: Int = 64 << 20, concurrent: Int = 2) {
        self.maxBytes = maxBytes
        self.concurrent = concurrent
    }

    /// From `STEWARD_BULK_MAX_BYTES` and `STEWARD_BULK_CONCURRENT`.
    public init(environment: [String: String]) throws {
        self.init()
        for (name, keyPath) in [
            ("STEWARD_BULK_MAX_BYTES", \BulkLimits.maxBytes), ("STEWARD_BULK_CONCURRENT", \BulkLimits.concurrent),
        ] {
            guard let text = environment[name] else { continue }
            guard let value = Int(text), value > 0 else {
                throw HTTPLimitsError(description: "\(name) must be a positive integer, not '\(text)'")
            }
            self[keyPath: keyPath] = value
        }
    }
}

/// A counting semaphore that never waits: `acquire` fails when all slots are taken.
final class Slots: Sendable {
    private let free: Mutex<Int>
    init(_ count: Int) { free = Mutex(count) }
    func acquire() -> Bool {
        free.withLock { free in
            guard free > 0 else { return false }
            free -= 1
            return true
        }
    }
    func release() { free.withLock { $0 += 1 } }
}
