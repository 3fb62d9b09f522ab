import Foundation

/// A typed error with a stable, machine-readable code.
///
/// The code never changes once shipped; clients branch on it. `field` names the offending input
/// (a JSON path such as `subject.email`), and `detail` is a human sentence. Neither ever contains a
/// personal value: an invalid email says "is not a valid email address", never the address itself.
public struct StewardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, in the broad sense the edge maps to a status code.
    public enum Kind: String, Sendable, Equatable {
        case invalidInput, unprocessable, notFound, conflict, unauthorized, forbidden, tooLarge, unavailable,
            internalFailure
    }

    public var kind: Kind
    /// Stable dotted code, e.g. `identity.invalid_email`.
    public var code: String
    public var detail: String
    public var field: String?

    public init(_ kind: Kind, code: String, detail: String, field: String? = nil) {
        self.kind = kind
        self.code = code
        self.detail = detail
        self.field = field
    }

    public var description: String {
        "\(code): \(detail)" + (field.map { " (field \($0))" } ?? "")
    }

    public static func invalid(_ code: String, _ detail: String, field: String? = nil) -> Self {
        .init(.invalidInput, code: code, detail: detail, field: field)
    }
    public static func unprocessable(_ code: String, _ detail: String, field: String? = nil) -> Self {
        .init(.unprocessable, code: code, detail: detail, field: field)
    }
    public static func notFound(_ code: String, _ detail: String) -> Self {
        .init(.notFound, code: code, detail: detail)
    }
    public static func conflict(_ code: String, _ detail: String, field: String? = nil) -> Self {
        .init(.conflict, code: code, detail: detail, field: field)
    }

    /// Returns a copy with the field path prefixed (`email` → `subject.email`).
    public func prefixingField(_ prefix: String) -> Self {
        var copy = self
        copy.field = field.map { "\(prefix).\($0)" } ?? prefix
        return copy
    }
}
