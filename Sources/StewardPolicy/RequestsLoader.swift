public import Foundation
public import StewardCore
import Yams

/// Loads `requests.yaml`: the legal regimes of data subject requests, each with its calendar (time
/// zone, holidays, whether a deadline on a weekend or holiday runs to the next working day), the
/// request types it grants and their clocks. Every issue names its file, line, key path and reason.
public enum RequestsLoader {
    public static let file = "requests.yaml"

    /// The regimes of a policy directory; none when it has no `requests.yaml`.
    public static func load(directory: String) throws -> [Regime] {
        let path = (directory as NSString).appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return try parse(data, file: path)
    }

    public static func parse(_ data: Data, file: String) throws -> [Regime] {
        var reader = Reader(file: file)
        guard let top = reader.document(data, allowed: ["version", "regimes"]) else {
            throw PolicyError(issues: reader.issues)
        }
        reader.version(top.map, root: top.root)
        var regimes: [Regime] = []
        var seen: Set<String> = []
        for (index, node) in reader.sequence(top.map["regimes"], at: "regimes", required: true).enumerated() {
            let path = "regimes[\(index)]"
            guard
                let map = reader.mapping(
                    node, at: path,
                    allowed: [
                        "key", "name", "time_zone", "rolls_to_working_day", "holidays", "due_soon", "default", "types",
                        "overrides",
                    ])
            else { continue }
            guard let key = reader.string(map["key"], parent: node, at: "\(path).key", required: true) else { continue }
            guard key.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression) != nil else {
                reader.issue(map["key"], "\(path).key", "must be a lower-case word, e.g. gdpr")
                continue
            }
            guard seen.insert(key).inserted else {
                reader.issue(map["key"], "\(path).key", "duplicate regime '\(key)'")
                continue
            }
            let name = reader.string(map["name"], parent: node, at: "\(path).name", required: false) ?? key
            var zone = TimeZone(identifier: "UTC")!
            if let text = reader.string(map["time_zone"], parent: node, at: "\(path).time_zone", required: true) {
                if let found = TimeZone(identifier: text) {
                    zone = found
                } else {
                    reader.issue(
                        map["time_zone"], "\(path).time_zone", "'\(text)' is not an IANA time zone, e.g. Europe/Berlin")
                }
            }
            let rolls = reader.bool(map["rolls_to_working_day"], at: "\(path).rolls_to_working_day") ?? false
            var holidays: Set<CivilDate> = []
            for (dayIndex, day) in reader.sequence(map["holidays"], at: "\(path).holidays", required: false)
                .enumerated()
            {
                guard let text = day.string, let date = CivilDate(parsing: text) else {
                    reader.issue(day, "\(path).holidays[\(dayIndex)]", "expected a date YYYY-MM-DD")
                    continue
                }
                holidays.insert(date)
            }
            var warning: TimeInterval = 7 * 86_400
            if let node = map["due_soon"] {
                if let text = node.string, case .days(let days) = StatutoryPeriod(parsing: text) {
                    warning = TimeInterval(days) * 86_400
                } else {
                    reader.issue(node, "\(path).due_soon", "expected a number of days, e.g. '7 days'")
                }
            }
            var rules: [RequestType: RegimeRule] = [:]
            let base = parseRule(map["default"], at: "\(path).default", inheriting: nil, reader: &reader)
            for (typeIndex, item) in reader.sequence(map["types"], at: "\(path).types", required: true).enumerated() {
                guard
                    let type = reader.enumeration(
                        item, RequestType.self, parent: nil, at: "\(path).types[\(typeIndex)]")
                else { continue }
                guard rules[type] == nil else {
                    reader.issue(item, "\(path).types[\(typeIndex)]", "duplicate type '\(type.rawValue)'")
                    continue
                }
                if let base { rules[type] = base }
            }
            // A default that is there but invalid has its own issue already.
            if base == nil, map["default"] == nil, map["types"] != nil {
                reader.issue(node, "\(path).default", "is required: the response period of the types")
            }
            for (overrideIndex, item) in reader.sequence(map["overrides"], at: "\(path).overrides", required: false)
                .enumerated()
            {
                let at = "\(path).overrides[\(overrideIndex)]"
                let rule = parseRule(item, at: at, inheriting: nil, alsoAllowed: ["types"], reader: &reader)
                let typesNode = item["types"]
                for (typeIndex, typeItem) in reader.sequence(typesNode, at: "\(at).types", required: true).enumerated()
                {
                    guard
                        let type = reader.enumeration(
                            typeItem, RequestType.self, parent: nil, at: "\(at).types[\(typeIndex)]")
                    else { continue }
                    if let rule { rules[type] = rule }
                }
            }
            regimes.append(
                Regime(
                    key: key, name: name,
                    calendar: DeadlineCalendar(zone: zone, holidays: holidays, rollsToWorkingDay: rolls),
                    rules: rules, warning: warning))
        }
        guard reader.issues.isEmpty else { throw PolicyError(issues: reader.issues) }
        return regimes
    }

    /// A rule: `response` (required), `extension`, `acknowledgement`, `verification: required | none`,
    /// `approval: officer | automatic` (a verified request starts at once).
    /// An override states its whole rule: it inherits nothing from the regime's default (a CCPA
    /// opt-out has neither the default's extension nor its acknowledgement).
    static func parseRule(
        _ node: Node?, at path: String, inheriting base: RegimeRule?, alsoAllowed: Set<String> = [],
        reader: inout Reader
    ) -> RegimeRule? {
        guard let node else { return nil }
        guard
            let map = reader.mapping(
                node, at: path,
                allowed: Set(["response", "extension", "acknowledgement", "verification", "approval"]).union(
                    alsoAllowed))
        else { return nil }
        var valid = true
        func period(_ key: String) -> StatutoryPeriod? {
            guard let value = map[key] else { return nil }
            guard let text = value.string, let period = StatutoryPeriod(parsing: text) else {
                reader.issue(
                    value, "\(path).\(key)", "expected a period such as '1 month', '45 days' or '10 business days'")
                valid = false
                return nil
            }
            return period
        }
        let response = period("response") ?? base?.response
        let extensionPeriod = period("extension") ?? base?.extensionPeriod
        let acknowledgement = period("acknowledgement") ?? base?.acknowledgement
        var verificationRequired = base?.verificationRequired ?? true
        if let value = map["verification"] {
            switch value.string {
            case "required": verificationRequired = true
            case "none": verificationRequired = false
            default:
                reader.issue(value, "\(path).verification", "expected required or none")
                valid = false
            }
        }
        var automatic = base?.automaticApproval ?? false
        if let value = map["approval"] {
            switch value.string {
            case "officer": automatic = false
            case "automatic": automatic = true
            default:
                reader.issue(value, "\(path).approval", "expected officer or automatic")
                valid = false
            }
        }
        guard let response else {
            if valid, map["response"] == nil { reader.issue(node, "\(path).response", "is required") }
            return nil
        }
        guard valid else { return nil }
        return RegimeRule(
            response: response, extensionPeriod: extensionPeriod, acknowledgement: acknowledgement,
            verificationRequired: verificationRequired, automaticApproval: automatic)
    }
}
