import Foundation
public import StewardCore

/// The OpenAPI document as this server enforces it: the generated template (Scripts/openapi.py) with
/// the loaded policy's purposes and notices as enumerations, and every `x-steward-text` schema given the
/// pattern of text `FreeText` accepts. So a request the document admits is never refused for its shape,
/// and a client generated from it knows the real rules — for this deployment's policy, not the
/// default's. Rendered once, when the API is built.
public enum OpenAPIRendering {
    /// The document for `policy`, as pretty-printed JSON with sorted keys.
    public static func document(policy: PolicySet) -> String {
        guard
            var root = try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.template.utf8))
                as? [String: Any],
            var components = root["components"] as? [String: Any],
            var schemas = components["schemas"] as? [String: Any]
        else {
            preconditionFailure("the OpenAPI template is not a JSON object with components.schemas")
        }
        let purposes = policy.sortedPurposes
        func keys(_ include: (Purpose) -> Bool) -> [Any] { purposes.filter(include).map(\.key) }
        schemas["PurposeKey"] = enumeration(schemas["PurposeKey"], keys { _ in true })
        schemas["RecordablePurposeKey"] = enumeration(
            schemas["RecordablePurposeKey"], keys { $0.mechanism != .noticeOnly })
        schemas["ConsentPurposeKey"] = enumeration(
            schemas["ConsentPurposeKey"], keys { $0.legalBasis == .consent && $0.mechanism != .noticeOnly })
        // Choices that grant a consent-based purpose: one alternative per such purpose (none: never).
        let grants = purposes.filter { $0.legalBasis == .consent && $0.mechanism != .noticeOnly }.map {
            purpose -> Any in
            ["required": [purpose.key], "properties": [purpose.key: ["const": "granted"]]]
        }
        if var choice = schemas["ConsentGrantChoice"] as? [String: Any] {
            choice["anyOf"] = grants.isEmpty ? [["not": [String: Any]()]] : grants
            schemas["ConsentGrantChoice"] = choice
        }
        schemas["DoubleOptInPurposeKey"] = enumeration(
            schemas["DoubleOptInPurposeKey"], keys { $0.doubleOptIn && $0.mechanism != .noticeOnly })
        schemas["NoticeRef"] = enumeration(
            schemas["NoticeRef"],
            policy.sortedNotices.map { ["id": $0.id, "version": $0.version] as [String: Any] })
        schemas["RegimeKey"] = enumeration(schemas["RegimeKey"], policy.regimes.map(\.key))
        let correctable = policy.dataMap.correctableFields
        schemas["CorrectableField"] = enumeration(schemas["CorrectableField"], correctable.map(\.path))
        schemas["CorrectableCategory"] = enumeration(
            schemas["CorrectableCategory"], Array(Set(correctable.map(\.category))).sorted())
        components["schemas"] = schemas
        root["components"] = components
        let completed = fillTextPatterns(root)
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: completed, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        else {
            preconditionFailure("the OpenAPI document could not be serialised")
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// `schema` with `values` as its enumeration; a schema no value satisfies when there are none
    /// (an empty `enum` is not valid JSON Schema).
    static func enumeration(_ schema: Any?, _ values: [Any]) -> Any {
        var schema = schema as? [String: Any] ?? [:]
        if values.isEmpty {
            schema["enum"] = nil
            schema["not"] = [String: Any]()
        } else {
            schema["enum"] = values
        }
        return schema
    }

    /// Replaces each `x-steward-text` marker with the `pattern` for its kind.
    static func fillTextPatterns(_ value: Any) -> Any {
        if var object = value as? [String: Any] {
            for (key, child) in object { object[key] = fillTextPatterns(child) }
            if let kind = object.removeValue(forKey: "x-steward-text") as? String {
                guard let pattern = textPattern(kind, maxLength: object["maxLength"] as? Int) else {
                    preconditionFailure("unknown x-steward-text kind \(kind) in the OpenAPI template")
                }
                object["pattern"] = pattern
            }
            return object
        }
        if let array = value as? [Any] { return array.map(fillTextPatterns) }
        return value
    }

    /// The pattern for a text kind: `name`, `identifier`, or `trimmed-name` / `trimmed-identifier` for
    /// fields whose surrounding white space is dropped before the check (so the pattern neither begins
    /// nor ends with white space, and an all-white-space value — empty once trimmed — does not match).
    /// With `maxLength`, the pattern bounds the length too (code points, as `FreeText` counts them),
    /// so the pattern alone says the whole rule — some generators read a pattern and not the length.
    public static func textPattern(_ kind: String, maxLength: Int? = nil) -> String? {
        let trimmed = kind.hasPrefix("trimmed-")
        let base = trimmed ? String(kind.dropFirst("trimmed-".count)) : kind
        let textKind: FreeText.Kind
        switch base {
        case "name": textKind = .name
        case "identifier": textKind = .identifier
        default: return nil
        }
        let body = characterClass { !FreeText.refuses($0, kind: textKind) }
        guard trimmed else { return "^\(body)" + (maxLength.map { "{1,\($0)}" } ?? "+") + "$" }
        let edge = characterClass { !FreeText.refuses($0, kind: textKind) && !isTrimmedSpace($0) }
        return "^\(edge)(\(body)" + (maxLength.map { "{0,\(max(0, $0 - 2))}" } ?? "*") + "\(edge))?$"
    }

    /// White space `trimmingCharacters(in: .whitespacesAndNewlines)` drops: Unicode Z* and the
    /// line and tab controls (which the text rules refuse anyway).
    static func isTrimmedSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
        default: return (0x09...0x0D).contains(scalar.value) || scalar.value == 0x85
        }
    }

    /// A positive class of the Basic Multilingual Plane's code points that `accepts`, written as
    /// `\uXXXX` ranges. Positive and BMP-only on purpose: the class then means the same to ECMA-262
    /// (which sees astral characters as surrogate pairs, excluded here) and to every other regex
    /// engine, at the price of not admitting emoji and other astral characters that names allow.
    static func characterClass(_ accepts: (Unicode.Scalar) -> Bool) -> String {
        var ranges: [(UInt32, UInt32)] = []
        for value in UInt32(0)...0xFFFF {
            guard let scalar = Unicode.Scalar(value), accepts(scalar) else { continue }  // nil: surrogates
            if let last = ranges.last, last.1 == value - 1 {
                ranges[ranges.count - 1].1 = value
            } else {
                ranges.append((value, value))
            }
        }
        func escaped(_ value: UInt32) -> String {
            let hex = String(value, radix: 16, uppercase: true)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
        return "["
            + ranges.map { $0.0 == $0.1 ? escaped($0.0) : escaped($0.0) + "-" + escaped($0.1) }.joined() + "]"
    }
}
