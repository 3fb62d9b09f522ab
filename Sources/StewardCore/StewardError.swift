import Foundation

/// A typed error with a stable, machine-readable code.
///
/// The code never changes once shipped; clients branch on it. `field` names the offending input
/// (a JSON path such as `subject.email`), and `detail` is a human sentence. Neither ever contains a
/// personal value: an invalid email says "is not a valid email address", never the address itself.
/// An error whose code is in the catalogue (`StewardError.Code`): every error Steward shows a client
/// or an operator — API errors, store errors, root-key refusals — conforms.
public protocol CataloguedError: Error {
    var code: StewardError.Code { get }
}

public struct StewardError: CataloguedError, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, in the broad sense the edge maps to a status code.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case invalidInput, unprocessable, notFound, conflict, unauthorized, forbidden, tooLarge, unavailable,
            internalFailure, methodNotAllowed, clientClosedRequest
        /// Existed, and is gone for good (an expired export package).
        case gone
        /// A command-line refusal to start (no HTTP status: the process exits non-zero).
        case refused

        /// The HTTP status an error of this kind answers with (nil: command line only).
        public var httpStatus: Int? {
            switch self {
            case .invalidInput: 400
            case .unauthorized: 401
            case .forbidden: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .conflict: 409
            case .gone: 410
            case .tooLarge: 413
            case .unprocessable: 422
            case .clientClosedRequest: 499
            case .internalFailure: 500
            case .unavailable: 503
            case .refused: nil
            }
        }
    }

    /// The catalogued code (`StewardError.Code`): stable, and the source of the kind.
    public var code: Code
    public var detail: String
    public var field: String?

    public var kind: Kind { code.kind }

    public init(_ code: Code, _ detail: String, field: String? = nil) {
        self.code = code
        self.detail = detail
        self.field = field
    }

    public var description: String {
        "\(code.rawValue): \(detail)" + (field.map { " (field \($0))" } ?? "")
    }

    /// Returns a copy with the field path prefixed (`email` → `subject.email`).
    public func prefixingField(_ prefix: String) -> Self {
        var copy = self
        copy.field = field.map { "\(prefix).\($0)" } ?? prefix
        return copy
    }
}
