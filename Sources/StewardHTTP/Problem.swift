import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
public import StewardCore
import StewardServices

/// An RFC 9457 problem document with Steward's stable `code` and the offending `field`.
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: StewardError.Code
    public var title: String
    public var detail: String
    public var field: String?
    public var headers: HTTPFields = [:]

    /// A problem with a status of its own (an HTTP-layer error, whose status is the client's to read).
    public init(status: HTTPResponse.Status, code: StewardError.Code, detail: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.title = status.reasonPhrase
        self.detail = detail
        self.field = field
    }

    /// The problem of a catalogued error: its kind sets the status.
    public init(_ error: StewardError) {
        let code = error.kind.httpStatus ?? 500
        let status: HTTPResponse.Status =
            code == 499 ? .init(code: 499, reasonPhrase: "Client Closed Request") : .init(code: code)
        self.init(status: status, code: error.code, detail: error.detail, field: error.field)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: String] = [
            "type": "https://steward.dev/problems/\(code.rawValue)", "title": title, "detail": detail,
            "code": code.rawValue,
        ]
        if let field { object["field"] = field }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(object)) ?? Data("{}".utf8)
        // `status` is a number: splice it in rather than encoding a heterogeneous dictionary.
        data.removeLast()
        data.append(contentsOf: Array(",\"status\":\(status.code)}".utf8))
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error into problem+json at the edge. Unknown errors become an opaque 500, logged once
/// with the request id and the error's type — never its values.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as StewardError {
            return try Problem(error).response(from: request, context: context)
        } catch let error as NIOTooManyBytesError {
            _ = error
            return try Problem(StewardError(.requestTooLarge, "the request body is too large"))
                .response(from: request, context: context)
        } catch StoreError.conflict {
            // Concurrent writes kept aborting each other past the service's own retries: nothing was
            // applied, and the client may simply send the request again.
            var problem = Problem(
                StewardError(
                    .storeBusy, "concurrent changes to the same records kept conflicting; nothing was applied, retry"))
            problem.headers[.retryAfter] = "1"
            return try problem.response(from: request, context: context)
        } catch StoreError.integrity(let reason) {
            // Fail closed: a value this version does not know (a tampered row, a downgrade) is never
            // read as a default; the request is refused and the operator told which column.
            context.logger.error(
                "the database holds a value Steward does not know; refused", metadata: ["store.integrity": "\(reason)"])
            return try Problem(
                StewardError(
                    .storeIntegrity,
                    "the database holds a value this version of Steward does not know; nothing was answered from it")
            ).response(from: request, context: context)
        } catch let error where Self.isClientGone(error) {
            // The client hung up (or was cut off by a read deadline) before its request was read: no one
            // will see an answer, and it is not the server's error. Counted as 499, as nginx does, logged
            // at debug.
            context.logger.debug(
                "the connection closed before the request was read",
                metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            return try Problem(StewardError(.requestAborted, "the connection closed before the request was read"))
                .response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Thrown by the HTTP layer before a route ran: the catalogued code for the statuses it uses,
            // `request.rejected` with the status itself otherwise.
            let code: StewardError.Code =
                switch error.status {
                case .notFound: .routeNotFound
                case .methodNotAllowed: .routeMethodNotAllowed
                case .contentTooLarge: .requestTooLarge
                default: .requestRejected
                }
            return try Problem(status: error.status, code: code, detail: error.status.reasonPhrase)
                .response(from: request, context: context)
        } catch {
            let kind: String
            switch error {
            case StoreError.unavailable(let reason): kind = "store unavailable: \(reason)"
            case StoreError.integrity(let reason): kind = "store integrity: \(reason)"
            default: kind = String(reflecting: type(of: error))
            }
            context.logger.error("unhandled error", metadata: ["error.type": "\(kind)"])
            return try Problem(StewardError(.internalError, "an internal error occurred; quote the request id"))
                .response(from: request, context: context)
        }
    }

    /// Errors that mean the connection went away while the request was being read.
    static func isClientGone(_ error: any Error) -> Bool {
        switch error {
        case is HTTPParserError, is IOError: true
        case let error as ChannelError: error == .ioOnClosedChannel || error == .eof || error == .alreadyClosed
        default: false
        }
    }
}
