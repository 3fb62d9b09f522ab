public import Foundation
public import StewardCore
import Yams

/// One problem in a policy file: where (file, line, key path) and why.
public struct PolicyIssue: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var keyPath: String
    public var reason: String

    public init(file: String, line: Int?, keyPath: String, reason: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.reason = reason
    }

    public var description: String {
        "\(file):\(line.map(String.init) ?? "?"): \(keyPath.isEmpty ? "(root)" : keyPath): \(reason)"
    }
}

/// Thrown when a policy does not validate; carries every issue found, not only the first.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var issues: [PolicyIssue]
    public var description: String {
        "the policy is invalid (\(issues.count) issue\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
}

/// Loads `Policies/` into a validated `PolicySet`.
public enum PolicyLoader {
    /// The files of a policy directory that this loader reads.
    public static let purposesFile = "purposes.yaml"

    /// Loads and validates the policy directory. `digest` hashes the raw file bytes (SHA-256 hex in
    /// production) so the audit log can record exactly which policy was in force.
    /// The digest covers `purposes.yaml` alone when it is the whole policy (so a deployment without a
    /// data map keeps its digest), else every file of the policy with its name.
    public static func load(directory: String, digest: (Data) -> String) throws -> PolicySet {
        let path = (directory as NSString).appendingPathComponent(purposesFile)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(issues: [
                PolicyIssue(file: path, line: nil, keyPath: "", reason: "file not found or not readable")
            ])
        }
        var mapFiles = DataMapLoader.files(directory: directory)
        let requestsPath = (directory as NSString).appendingPathComponent(RequestsLoader.file)
        if let bytes = FileManager.default.contents(atPath: requestsPath) { mapFiles.append((requestsPath, bytes)) }
        var digested = data
        for (file, bytes) in mapFiles {
            let name = file.hasPrefix(directory) ? String(file.dropFirst(directory.count)) : file
            digested.append(contentsOf: Array("\u{0}\(name)\u{0}".utf8))
            digested.append(bytes)
        }
        var policy: PolicySet
        var issues: [PolicyIssue] = []
        var purposesValid = true
        do {
            policy = try parse(purposesYAML: data, file: path, digest: digest(digested))
        } catch let error as PolicyError {
            // The data map is still checked, so one run reports every issue of the directory (but not
            // its purposes against a purposes file that did not load).
            issues = error.issues
            purposesValid = false
            policy = PolicySet(purposes: [], notices: [], digest: "")
        }
        do {
            policy.dataMap = try DataMapLoader.load(
                directory: directory, purposes: purposesValid ? Set(policy.purposes.keys) : nil)
        } catch let error as PolicyError {
            issues += error.issues
        }
        do {
            policy.regimes = try RequestsLoader.load(directory: directory)
        } catch let error as PolicyError {
            issues += error.issues
        }
        guard issues.isEmpty else { throw PolicyError(issues: issues) }
        return policy
    }

    /// Parses `purposes.yaml` text.
    public static func parse(purposesYAML data: Data, file: String, digest: String) throws -> PolicySet {
        var reader = Reader(file: file)
        guard
            let (root, top) = reader.document(
                data, allowed: ["version", "confirmation_token_lifetime", "purposes", "notices"])
        else { throw PolicyError(issues: reader.issues) }
        reader.version(top, root: root)
        var lifetime = CalendarPeriod(amount: 7, unit: .day)
        if let node = top["confirmation_token_lifetime"] {
            if let value = reader.period(node, at: "confirmation_token_lifetime") { lifetime = value }
        }
        var purposes: [Purpose] = []
        var seenPurposes: Set<String> = []
        for (index, node) in reader.sequence(top["purposes"], at: "purposes", required: true).enumerated() {
            let path = "purposes[\(index)]"
            guard
                let map = reader.mapping(
                    node, at: path,
                    allowed: [
                        "key", "description", "legal_basis", "mechanism", "double_opt_in", "validity",
                        "sale_or_sharing", "jurisdictions",
                    ])
            else { continue }
            let key = reader.string(map["key"], parent: node, at: "\(path).key", required: true)
            if let key {
                if !Reader.isDottedKey(key) {
                    reader.issue(map["key"], "\(path).key", "must be lower-case dotted words, e.g. marketing.email")
                } else if !seenPurposes.insert(key).inserted {
                    reader.issue(map["key"], "\(path).key", "duplicate purpose key '\(key)'")
                }
            }
            let description = reader.string(map["description"], parent: node, at: "\(path).description", required: true)
            let basis = reader.enumeration(map["legal_basis"], LegalBasis.self, parent: node, at: "\(path).legal_basis")
            let mechanism = reader.enumeration(
                map["mechanism"], ConsentMechanism.self, parent: node, at: "\(path).mechanism")
            let doubleOptIn = reader.bool(map["double_opt_in"], at: "\(path).double_opt_in") ?? false
            let sale = reader.bool(map["sale_or_sharing"], at: "\(path).sale_or_sharing") ?? false
            let validity = map["validity"].flatMap { reader.period($0, at: "\(path).validity") }
            let jurisdictions = reader.sequence(map["jurisdictions"], at: "\(path).jurisdictions", required: false)
                .enumerated().compactMap {
                    reader.string($1, parent: nil, at: "\(path).jurisdictions[\($0)]", required: true)
                }
            if doubleOptIn, mechanism != .optIn, mechanism != nil {
                reader.issue(map["double_opt_in"], "\(path).double_opt_in", "double opt-in needs mechanism opt_in")
            }
            if mechanism == .optIn, basis != nil, basis != .consent {
                reader.issue(map["mechanism"], "\(path).mechanism", "opt_in needs legal_basis consent")
            }
            if basis == .consent, mechanism == .noticeOnly {
                reader.issue(map["mechanism"], "\(path).mechanism", "a consent-based purpose cannot be notice_only")
            }
            if let key, let description, let basis, let mechanism {
                purposes.append(
                    Purpose(
                        key: key, description: description, legalBasis: basis, mechanism: mechanism,
                        doubleOptIn: doubleOptIn, validity: validity, saleOrSharing: sale, jurisdictions: jurisdictions)
                )
            }
        }
        var notices: [Notice] = []
        var seenNotices: Set<String> = []
        for (index, node) in reader.sequence(top["notices"], at: "notices", required: true).enumerated() {
            let path = "notices[\(index)]"
            guard let map = reader.mapping(node, at: path, allowed: ["id", "version", "language", "url", "sha256"])
            else { continue }
            let id = reader.string(map["id"], parent: node, at: "\(path).id", required: true)
            let version = reader.string(map["version"], parent: node, at: "\(path).version", required: true)
            let language = reader.string(map["language"], parent: node, at: "\(path).language", required: true)
            let url = reader.string(map["url"], parent: node, at: "\(path).url", required: true)
            let sha = reader.string(map["sha256"], parent: node, at: "\(path).sha256", required: true)
            if let sha, sha.range(of: "^[0-9a-f]{64}$", options: .regularExpression) == nil {
                reader.issue(
                    map["sha256"], "\(path).sha256", "must be 64 lower-case hex digits (SHA-256 of the text shown)")
            }
            if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
                reader.issue(map["url"], "\(path).url", "must be an http(s) URL")
            }
            if let id, let version, !seenNotices.insert("\(id)@\(version)").inserted {
                reader.issue(node, path, "duplicate notice '\(id)' version '\(version)'")
            }
            if let id, let version, let language, let url, let sha {
                notices.append(Notice(id: id, version: version, language: language, url: url, sha256: sha))
            }
        }
        guard reader.issues.isEmpty else { throw PolicyError(issues: reader.issues) }
        return PolicySet(purposes: purposes, notices: notices, digest: digest, confirmationTokenLifetime: lifetime)
    }
}

/// Walks YAML nodes, recording issues with line numbers instead of stopping at the first.
struct Reader {
    let file: String
    var issues: [PolicyIssue] = []

    init(file: String) { self.file = file }

    /// Lower-case dotted words: purpose and category keys (`marketing.email`, `user.contact.email`).
    static func isDottedKey(_ key: String) -> Bool {
        key.range(of: #"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"#, options: .regularExpression) != nil
    }

    /// An ISO 3166 alpha-2 code as policy files write it: two upper-case letters.
    static func isCountryCode(_ code: String) -> Bool {
        code.utf8.count == 2 && code.utf8.allSatisfy { $0 >= 65 && $0 <= 90 }
    }

    mutating func issue(_ node: Node?, _ keyPath: String, _ reason: String) {
        issues.append(PolicyIssue(file: file, line: node?.mark?.line, keyPath: keyPath, reason: reason))
    }

    func yamlIssue(_ error: YamlError) -> PolicyIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return PolicyIssue(file: file, line: mark.line, keyPath: "", reason: "YAML syntax: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return PolicyIssue(
                file: file, line: context.mark.line, keyPath: "",
                reason: "duplicated keys: \(duplicates.joined(separator: ", "))")
        default:
            return PolicyIssue(file: file, line: nil, keyPath: "", reason: "YAML error")
        }
    }

    mutating func mapping(_ node: Node?, at path: String, allowed: Set<String>) -> [String: Node]? {
        guard let node, case .mapping(let mapping) = node else {
            issue(node, path, "expected a mapping")
            return nil
        }
        var out: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                issue(key, path, "keys must be strings")
                continue
            }
            if !allowed.contains(name) {
                issue(
                    key, path.isEmpty ? name : "\(path).\(name)",
                    "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            out[name] = value
        }
        return out
    }

    mutating func sequence(_ node: Node?, at path: String, required: Bool) -> [Node] {
        guard let node else {
            if required { issue(nil, path, "is required") }
            return []
        }
        guard case .sequence(let sequence) = node else {
            issue(node, path, "expected a list")
            return []
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node?, parent: Node?, at path: String, required: Bool) -> String? {
        guard let node else {
            if required { issue(parent, path, "is required") }
            return nil
        }
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            issue(node, path, "expected a non-empty string")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node?, at path: String) -> Bool? {
        guard let node else { return nil }
        guard let value = node.bool else {
            issue(node, path, "expected true or false")
            return nil
        }
        return value
    }

    mutating func period(_ node: Node, at path: String) -> CalendarPeriod? {
        guard let text = node.string, let period = CalendarPeriod(parsing: text) else {
            issue(node, path, "expected a period such as '13 months', '30 days' or '2 years'")
            return nil
        }
        return period
    }

    mutating func enumeration<E: RawRepresentable & CaseIterable>(
        _ node: Node?, _ type: E.Type, parent: Node?, at path: String
    ) -> E? where E.RawValue == String {
        guard let text = string(node, parent: parent, at: path, required: true) else { return nil }
        guard let value = E(rawValue: text) else {
            issue(
                node, path,
                "unknown value '\(text)' (expected one of: \(E.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        return value
    }
}
