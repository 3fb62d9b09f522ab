import Foundation
import HTTPTypes
import Testing

/// Issue 15, defects 2 and 3: connections are bounded in time, and a client that goes away is not
/// the server's error. Against the built binary, over raw sockets on loopback.
@Suite struct ConnectionLimits {
    /// A blocking TCP client on loopback, for what an HTTP client library will not do: stall, trickle
    /// or hang up halfway.
    final class RawConnection: Sendable {  // its socket is used by one thread at a time
        let socket: Int32

        init(port: Int) throws {
            socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                close(socket)
                throw POSIXError(.ECONNREFUSED)
            }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(socket) }

        func send(_ text: String) {
            _ = text.utf8CString.withUnsafeBufferPointer { write(socket, $0.baseAddress, $0.count - 1) }
        }

        /// Reads until the server closes the connection or `seconds` pass: what arrived, and whether it closed.
        func readUntilClosed(seconds: Int) -> (text: String, closed: Bool) {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var received = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(socket, &buffer, buffer.count)
                if count > 0 {
                    received += buffer[0..<count]
                    continue
                }
                return (String(decoding: received, as: UTF8.self), count == 0 || errno == ECONNRESET)
            }
        }
    }

    static func withServer(
        _ environment: [String: String], _ body: @Sendable (ServerProcess, URL) async throws -> Void
    ) async throws {
        try await BuiltBinary.withDirectory("conn") { directory in
            let log = directory.appendingPathComponent("server.log")
            let server = try ServerProcess(
                data: directory.appendingPathComponent("data").path, database: [], log: log, environment: environment)
            defer { server.kill() }
            try await server.waitUntilReady()
            try await body(server, log)
            #expect(try await server.terminate() == 0)
        }
    }

    @Test func idleAndSlowHeaderConnectionsAreClosedAfterTheIdleTimeout() async throws {
        try await Self.withServer(["STEWARD_HTTP_IDLE_TIMEOUT": "1"]) { server, _ in
            let idle = try RawConnection(port: server.port)
            let slow = try RawConnection(port: server.port)
            slow.send("GET /health HTTP/1.1\r\nHost: x\r\n")  // the head never ends
            let started = ContinuousClock.now
            let (idleRead, slowRead) = try await BuiltBinary.offPool {
                (idle.readUntilClosed(seconds: 8), slow.readUntilClosed(seconds: 8))
            }
            #expect(idleRead.closed && idleRead.text.isEmpty)
            #expect(slowRead.closed)
            #expect(ContinuousClock.now - started < .seconds(8))
            // A request that completes is answered, and the connection stays usable until idle.
            let prompt = try RawConnection(port: server.port)
            prompt.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            let answer = try await BuiltBinary.offPool { prompt.readUntilClosed(seconds: 8) }
            #expect(answer.text.hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test func aTricklingBodyIsCutOffAndAnAbortIsNotAServerError() async throws {
        try await Self.withServer(["STEWARD_HTTP_BODY_TIMEOUT": "1"]) { server, log in
            let created = try await BuiltBinary.run(
                ["keys", "create", "--role", "service", "--name", "c", "--data-dir", server.dataDir])
            let key = try #require(created.output.split(separator: "\n").last.map(String.init))
            let head =
                "POST /v1/consents/bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + "Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n"
            // Trickles: cut off after the body timeout.
            let trickle = try RawConnection(port: server.port)
            trickle.send(head + "{\"subject\"")
            let started = ContinuousClock.now
            let cut = try await BuiltBinary.offPool { trickle.readUntilClosed(seconds: 8) }
            #expect(cut.closed)
            #expect(ContinuousClock.now - started < .seconds(6))
            // Hangs up halfway: nothing recorded, and neither a 500 in the metrics nor an error in the log.
            for _ in 0..<3 {
                let abort = try RawConnection(port: server.port)
                abort.send(head + "{\"subject\":{\"email\":")
                try await Task.sleep(for: .milliseconds(200))
                _ = abort  // closed when released
            }
            try await Task.sleep(for: .milliseconds(500))
            let metrics = try await BuiltBinary.offPool { () -> String in
                let connection = try RawConnection(port: server.port)
                connection.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return connection.readUntilClosed(seconds: 8).text
            }
            #expect(metrics.contains("steward_http_requests_total"))
            #expect(!metrics.contains("status=\"500\""), "\(metrics)")
            #expect(metrics.contains("status=\"499\""), "the aborts are counted as the client's")
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(!text.contains(" error "), "\(text.split(separator: "\n").filter { $0.contains(" error ") })")
        }
    }
}
