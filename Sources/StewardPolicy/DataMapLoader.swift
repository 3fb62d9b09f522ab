public import Foundation
public import StewardCore
import Yams

/// Loads the data map: `taxonomy.yaml` and one file per system under `systems/`, validated together
/// with the purposes. Every issue names its file, line, key path and reason; all are collected
/// before failing.
public enum DataMapLoader {
    public static let taxonomyFile = "taxonomy.yaml"
    public static let systemsDirectory = "systems"

    /// The raw bytes of the data map's files, in a stable order, for the policy digest.
    public static func files(directory: String) -> [(path: String, data: Data)] {
        var files: [(String, Data)] = []
        let taxonomy = (directory as NSString).appendingPathComponent(taxonomyFile)
        if let data = FileManager.default.contents(atPath: taxonomy) { files.append((taxonomy, data)) }
        let organisation = (directory as NSString).appendingPathComponent(organisationFile)
        if let data = FileManager.default.contents(atPath: organisation) { files.append((organisation, data)) }
        for path in systemFiles(directory: directory) {
            if let data = FileManager.default.contents(atPath: path) { files.append((path, data)) }
        }
        return files
    }

    static func systemFiles(directory: String) -> [String] {
        let folder = (directory as NSString).appendingPathComponent(systemsDirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
            (folder as NSString).appendingPathComponent($0)
        }
    }

    /// Loads and validates the data map of a policy directory against its `purposes`. A directory
    /// without `taxonomy.yaml` and `systems/` has an empty map. `purposes` nil skips the purpose
    /// check (the purposes file did not load).
    public static func load(directory: String, purposes: Set<String>?) throws -> DataMap {
        var issues: [PolicyIssue] = []
        let taxonomyPath = (directory as NSString).appendingPathComponent(taxonomyFile)
        let systemPaths = systemFiles(directory: directory)
        var taxonomy = Taxonomy(categories: [])
        if let data = FileManager.default.contents(atPath: taxonomyPath) {
            do {
                taxonomy = try parseTaxonomy(data, file: taxonomyPath)
            } catch let error as PolicyError {
                issues += error.issues
            }
        } else if !systemPaths.isEmpty {
            issues.append(
                PolicyIssue(
                    file: taxonomyPath, line: nil, keyPath: "",
                    reason: "file not found: systems are declared, so their categories need a taxonomy"))
        }
        var parsed: [ParsedSystem] = []
        for path in systemPaths {
            guard let data = FileManager.default.contents(atPath: path) else {
                issues.append(PolicyIssue(file: path, line: nil, keyPath: "", reason: "not readable"))
                continue
            }
            var reader = Reader(file: path)
            if var system = parseSystem(data, reader: &reader) {
                system.clean = reader.issues.isEmpty
                parsed.append(system)
            }
            issues += reader.issues
        }
        var organisation: Organisation?
        let organisationPath = (directory as NSString).appendingPathComponent(organisationFile)
        if let data = FileManager.default.contents(atPath: organisationPath) {
            do {
                organisation = try parseOrganisation(data, file: organisationPath)
            } catch let error as PolicyError {
                issues += error.issues
            }
        }
        issues += validate(parsed, taxonomy: taxonomy, purposes: purposes)
        guard issues.isEmpty else { throw PolicyError(issues: issues) }
        return DataMap(taxonomy: taxonomy, systems: parsed.map(\.system), organisation: organisation)
    }

    // MARK: Taxonomy

    /// Parses `taxonomy.yaml`: categories in order, each resolved against its parent (declared first).
    public static func parseTaxonomy(_ data: Data, file: String) throws -> Taxonomy {
        var reader = Reader(file: file)
        guard let top = reader.document(data, allowed: ["version", "categories"]) else {
            throw PolicyError(issues: reader.issues)
        }
        reader.version(top.map, root: top.root)
        var resolved: [String: DataCategory] = [:]
        var ordered: [DataCategory] = []
        for (index, node) in reader.sequence(top.map["categories"], at: "categories", required: true).enumerated() {
            let path = "categories[\(index)]"
            guard
                let map = reader.mapping(
                    node, at: path,
                    allowed: [
                        "key", "description", "sensitivity", "gdpr_special", "gdpr_criminal", "ccpa_sensitive",
                        "erasure", "keep_reason",
                    ])
            else { continue }
            guard let key = reader.string(map["key"], parent: node, at: "\(path).key", required: true) else { continue }
            guard Reader.isDottedKey(key) else {
                reader.issue(map["key"], "\(path).key", "must be lower-case dotted words, e.g. user.contact.email")
                continue
            }
            if resolved[key] != nil {
                reader.issue(map["key"], "\(path).key", "duplicate category '\(key)'")
                continue
            }
            let description = reader.string(map["description"], parent: node, at: "\(path).description", required: true)
            var parent: DataCategory?
            if let dot = key.lastIndex(of: ".") {
                let parentKey = String(key[..<dot])
                parent = resolved[parentKey]
                if parent == nil {
                    reader.issue(
                        map["key"], "\(path).key", "its parent category '\(parentKey)' is not declared before it")
                    continue
                }
            }
            var sensitivity = parent?.sensitivity
            if let node = map["sensitivity"] {
                sensitivity = reader.enumeration(node, Sensitivity.self, parent: nil, at: "\(path).sensitivity")
            } else if parent == nil {
                reader.issue(node, "\(path).sensitivity", "is required on a top-level category")
            }
            let erasure =
                map["erasure"].map { reader.enumeration($0, ErasureStrategy.self, parent: nil, at: "\(path).erasure") }
                ?? parent?.erasure
            let keepReason =
                reader.string(map["keep_reason"], parent: node, at: "\(path).keep_reason", required: false)
                ?? (map["erasure"] == nil ? parent?.keepReason : nil)
            if erasure == .keep && keepReason == nil {
                reader.issue(map["erasure"] ?? node, "\(path).keep_reason", "erasure keep needs a keep_reason")
            }
            let category = DataCategory(
                key: key, description: description ?? "", sensitivity: sensitivity ?? .personal,
                gdprSpecial: reader.bool(map["gdpr_special"], at: "\(path).gdpr_special") ?? parent?.gdprSpecial
                    ?? false,
                gdprCriminal: reader.bool(map["gdpr_criminal"], at: "\(path).gdpr_criminal") ?? parent?.gdprCriminal
                    ?? false,
                ccpaSensitive: reader.bool(map["ccpa_sensitive"], at: "\(path).ccpa_sensitive") ?? parent?.ccpaSensitive
                    ?? false,
                erasure: erasure, keepReason: keepReason)
            resolved[key] = category
            ordered.append(category)
        }
        guard reader.issues.isEmpty else { throw PolicyError(issues: reader.issues) }
        return Taxonomy(categories: ordered)
    }

    // MARK: Systems

    /// A system as parsed, with where each part was written (for cross-file issues).
    struct ParsedSystem {
        var system: DataSystem
        var file: String
        var line: Int?
        /// `collection` and `collection.field` → line, key path.
        var places: [String: (line: Int?, keyPath: String)]
        var purposeLines: [(purpose: String, line: Int?, keyPath: String)]
        /// The file had no issue of its own: the checks across collections run on it (on a file
        /// with one, they would only repeat it — a dropped field leaves its collection unreachable).
        var clean = true

        func place(_ key: String) -> (line: Int?, keyPath: String) { places[key] ?? (line, "") }
    }

    static func parseSystem(_ data: Data, reader: inout Reader) -> ParsedSystem? {
        guard
            let top = reader.document(
                data,
                allowed: [
                    "version", "key", "name", "kind", "connection", "secret", "callback_within", "owner", "purposes",
                    "collections",
                    "data_subjects", "location", "processor", "recipients", "transfer_safeguard", "retention",
                ])
        else { return nil }
        let (root, map) = (top.root, top.map)
        reader.version(map, root: root)
        let key = reader.string(map["key"], parent: root, at: "key", required: true)
        if let key, key.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression) == nil {
            reader.issue(map["key"], "key", "must be a lower-case word (letters, digits, _), e.g. crm")
        }
        let name = reader.string(map["name"], parent: root, at: "name", required: false)
        let kind = reader.enumeration(map["kind"], DataSystem.Kind.self, parent: root, at: "kind")
        let connection = parseConnection(map["connection"], parent: root, reader: &reader)
        var secret: ConnectionReference?
        if kind == .http {
            secret = parseConnection(map["secret"], parent: root, reader: &reader, name: "secret")
        } else if let node = map["secret"] {
            reader.issue(node, "secret", "is for http systems (the key their requests are signed with)")
        }
        var callbackWithin: Double?
        if let node = map["callback_within"] {
            if kind != .http {
                reader.issue(node, "callback_within", "is for http systems (how long they may take to call back)")
            } else if let text = node.string, let seconds = DataSystem.callbackWindow(parsing: text) {
                callbackWithin = seconds
            } else {
                reader.issue(
                    node, "callback_within", "expected 1 to 2,160 hours or 1 to 90 days, e.g. '7 days', '48 hours'")
            }
        }
        let owner = reader.string(map["owner"], parent: root, at: "owner", required: false)
        var purposeLines: [(String, Int?, String)] = []
        for (index, node) in reader.sequence(map["purposes"], at: "purposes", required: false).enumerated() {
            if let purpose = reader.string(node, parent: nil, at: "purposes[\(index)]", required: true) {
                purposeLines.append((purpose, node.mark?.line, "purposes[\(index)]"))
            }
        }
        let systemPurposes = purposeLines.map(\.0)
        let processing = parseProcessing(map, root: root, reader: &reader)
        var places: [String: (Int?, String)] = [:]
        var collections: [DataCollection] = []
        for (index, node) in reader.sequence(map["collections"], at: "collections", required: true).enumerated() {
            let path = "collections[\(index)]"
            guard let collection = reader.mapping(node, at: path, allowed: ["name", "primary_key", "fields"]) else {
                continue
            }
            guard let name = reader.identifier(collection["name"], parent: node, at: "\(path).name") else { continue }
            if places[name] != nil {
                reader.issue(collection["name"], "\(path).name", "duplicate collection '\(name)'")
                continue
            }
            places[name] = (node.mark?.line, path)
            var primaryKey: [String] = []
            if let keyNode = collection["primary_key"] {
                if case .sequence(let items) = keyNode {
                    primaryKey = items.enumerated().compactMap {
                        reader.identifier($1, parent: nil, at: "\(path).primary_key[\($0)]")
                    }
                } else if let single = reader.identifier(keyNode, parent: nil, at: "\(path).primary_key") {
                    primaryKey = [single]
                }
            }
            var fields: [DataField] = []
            for (fieldIndex, fieldNode) in reader.sequence(collection["fields"], at: "\(path).fields", required: true)
                .enumerated()
            {
                let fieldPath = "\(path).fields[\(fieldIndex)]"
                guard
                    let field = reader.mapping(
                        fieldNode, at: fieldPath,
                        allowed: [
                            "name", "category", "identity", "references", "erasure", "keep_reason", "purposes",
                            "protection", "match",
                        ])
                else { continue }
                guard let fieldName = reader.identifier(field["name"], parent: fieldNode, at: "\(fieldPath).name")
                else { continue }
                if places["\(name).\(fieldName)"] != nil {
                    reader.issue(field["name"], "\(fieldPath).name", "duplicate field '\(fieldName)' in '\(name)'")
                    continue
                }
                places["\(name).\(fieldName)"] = (fieldNode.mark?.line, fieldPath)
                let category = reader.string(
                    field["category"], parent: fieldNode, at: "\(fieldPath).category", required: false)
                let identity = field["identity"].flatMap {
                    reader.enumeration($0, IdentityKind.self, parent: nil, at: "\(fieldPath).identity")
                }
                var reference: FieldReference?
                if let text = reader.string(
                    field["references"], parent: fieldNode, at: "\(fieldPath).references", required: false)
                {
                    reference = FieldReference(parsing: text)
                    if reference == nil {
                        reader.issue(
                            field["references"], "\(fieldPath).references",
                            "must be collection.field or system.collection.field")
                    }
                }
                let erasure = field["erasure"].flatMap {
                    reader.enumeration($0, ErasureStrategy.self, parent: nil, at: "\(fieldPath).erasure")
                }
                let keepReason = reader.string(
                    field["keep_reason"], parent: fieldNode, at: "\(fieldPath).keep_reason", required: false)
                if erasure == .keep && keepReason == nil {
                    reader.issue(field["erasure"], "\(fieldPath).keep_reason", "erasure keep needs a keep_reason")
                }
                let protection = field["protection"].flatMap {
                    reader.enumeration($0, FieldProtection.self, parent: nil, at: "\(fieldPath).protection")
                }
                let match = field["match"].flatMap {
                    reader.enumeration($0, IdentityMatch.self, parent: nil, at: "\(fieldPath).match")
                }
                if match != nil && identity == nil {
                    reader.issue(field["match"], "\(fieldPath).match", "match applies to identity fields (identity:)")
                }
                var fieldPurposes: [String]?
                if let node = field["purposes"] {
                    fieldPurposes = reader.sequence(node, at: "\(fieldPath).purposes", required: false).enumerated()
                        .compactMap { index, item in
                            let at = "\(fieldPath).purposes[\(index)]"
                            let purpose = reader.string(item, parent: nil, at: at, required: true)
                            if let purpose { purposeLines.append((purpose, item.mark?.line, at)) }
                            return purpose
                        }
                }
                if category == nil && reference == nil && !primaryKey.contains(fieldName) && identity == nil {
                    reader.issue(
                        fieldNode, "\(fieldPath).category",
                        "has no category: classify it (system.operations for data about no one)")
                }
                fields.append(
                    DataField(
                        name: fieldName, category: category, identity: identity, references: reference,
                        erasure: erasure, keepReason: keepReason, purposes: fieldPurposes, protection: protection,
                        match: match))
            }
            for (keyIndex, column) in primaryKey.enumerated() where !fields.contains(where: { $0.name == column }) {
                reader.issue(
                    collection["primary_key"], "\(path).primary_key[\(keyIndex)]",
                    "names '\(column)', which is not a field of '\(name)'")
            }
            collections.append(DataCollection(name: name, primaryKey: primaryKey, fields: fields))
        }
        guard let key, let kind, let connection else { return nil }
        return ParsedSystem(
            system: DataSystem(
                key: key, name: name ?? key, kind: kind, connection: connection, owner: owner,
                purposes: systemPurposes, collections: collections, processing: processing, secret: secret,
                callbackWithin: callbackWithin),
            file: reader.file, line: root.mark?.line, places: places, purposeLines: purposeLines)
    }

    /// The system's Art. 30 facts: all optional; a location is an ISO 3166 alpha-2 code.
    static func parseProcessing(_ map: [String: Node], root: Node, reader: inout Reader) -> DataSystem.Processing {
        func list(_ key: String) -> [String] {
            reader.sequence(map[key], at: key, required: false).enumerated().compactMap { index, node in
                reader.string(node, parent: nil, at: "\(key)[\(index)]", required: true)
            }
        }
        let location = reader.string(map["location"], parent: root, at: "location", required: false)
        if let location, !Reader.isCountryCode(location) {
            reader.issue(map["location"], "location", "must be an ISO 3166 alpha-2 country code, e.g. DE or US")
        }
        return DataSystem.Processing(
            dataSubjects: list("data_subjects"), location: location,
            processor: reader.string(map["processor"], parent: root, at: "processor", required: false),
            recipients: list("recipients"),
            transferSafeguard: reader.string(
                map["transfer_safeguard"], parent: root, at: "transfer_safeguard", required: false),
            retention: reader.string(map["retention"], parent: root, at: "retention", required: false))
    }

    // MARK: Organisation

    public static let organisationFile = "organisation.yaml"

    /// Parses `organisation.yaml`: the controller (required), DPO and representative, country,
    /// security measures.
    public static func parseOrganisation(_ data: Data, file: String) throws -> Organisation {
        var reader = Reader(file: file)
        guard
            let top = reader.document(
                data, allowed: ["version", "controller", "dpo", "representative", "country", "security_measures"])
        else { throw PolicyError(issues: reader.issues) }
        reader.version(top.map, root: top.root)
        func party(_ key: String, required: Bool) -> Organisation.Party? {
            guard let node = top.map[key] else {
                if required { reader.issue(top.root, key, "is required: name and contact") }
                return nil
            }
            guard let map = reader.mapping(node, at: key, allowed: ["name", "contact", "address"]) else { return nil }
            let name = reader.string(map["name"], parent: node, at: "\(key).name", required: true)
            let contact = reader.string(map["contact"], parent: node, at: "\(key).contact", required: true)
            let address = reader.string(map["address"], parent: node, at: "\(key).address", required: false)
            guard let name, let contact else { return nil }
            return Organisation.Party(name: name, contact: contact, address: address)
        }
        let controller = party("controller", required: true)
        let dpo = party("dpo", required: false)
        let representative = party("representative", required: false)
        let country = reader.string(top.map["country"], parent: top.root, at: "country", required: false)
        if let country, !Reader.isCountryCode(country) {
            reader.issue(top.map["country"], "country", "must be an ISO 3166 alpha-2 country code, e.g. DE")
        }
        let measures = reader.sequence(top.map["security_measures"], at: "security_measures", required: false)
            .enumerated().compactMap { index, node in
                reader.string(node, parent: nil, at: "security_measures[\(index)]", required: true)
            }
        guard reader.issues.isEmpty, let controller else { throw PolicyError(issues: reader.issues) }
        return Organisation(
            controller: controller, dpo: dpo, representative: representative, country: country,
            securityMeasures: measures)
    }

    /// `connection:` (or an http system's `secret:`): `env: VARIABLE` or `file: name`, never the
    /// value itself.
    static func parseConnection(_ node: Node?, parent: Node, reader: inout Reader, name: String = "connection")
        -> ConnectionReference?
    {
        guard let node else {
            reader.issue(parent, name, "is required: `env: VARIABLE` or `file: name`")
            return nil
        }
        guard case .mapping(let mapping) = node else {
            reader.issue(
                node, name,
                "must be `env: VARIABLE` or `file: name`: a connection string, password or secret never goes in a policy file"
            )
            return nil
        }
        var found: [ConnectionReference] = []
        for (key, value) in mapping {
            switch key.string {
            case "env":
                guard let name = value.string, name.range(of: "^[A-Z_][A-Z0-9_]*$", options: .regularExpression) != nil
                else {
                    reader.issue(value, "\(name).env", "must be an environment variable name (A-Z, 0-9, _)")
                    continue
                }
                found.append(.environment(name))
            case "file":
                guard let name = value.string, !name.isEmpty, !name.contains("\0") else {
                    reader.issue(value, "\(name).file", "expected a file name")
                    continue
                }
                found.append(.file(name))
            default:
                reader.issue(
                    key, "\(name).\(key.string ?? "?")",
                    "unknown key (expected env or file): a connection string, password or secret never goes in a policy file"
                )
            }
        }
        guard found.count == 1 else {
            if found.count > 1 { reader.issue(node, name, "give one of env or file, not both") }
            return nil
        }
        return found[0]
    }

    // MARK: Validation across files

    static func validate(_ systems: [ParsedSystem], taxonomy: Taxonomy, purposes: Set<String>?) -> [PolicyIssue] {
        var issues: [PolicyIssue] = []
        func issue(_ system: ParsedSystem, _ place: String, _ reason: String) {
            let (line, keyPath) = system.place(place)
            issues.append(PolicyIssue(file: system.file, line: line, keyPath: keyPath, reason: reason))
        }
        var byKey: [String: ParsedSystem] = [:]
        for system in systems {
            if let first = byKey[system.system.key] {
                issues.append(
                    PolicyIssue(
                        file: system.file, line: system.line, keyPath: "key",
                        reason: "duplicate system key '\(system.system.key)' (also in \(first.file))"))
                continue
            }
            byKey[system.system.key] = system
        }
        let map = DataMap(taxonomy: taxonomy, systems: systems.map(\.system))
        var dangling: Set<CollectionNode> = []
        for system in systems {
            for (purpose, line, keyPath) in system.purposeLines where purposes.map({ !$0.contains(purpose) }) ?? false {
                issues.append(
                    PolicyIssue(
                        file: system.file, line: line, keyPath: keyPath,
                        reason: "unknown purpose '\(purpose)' (not declared in purposes.yaml)"))
            }
            for collection in system.system.collections {
                for field in collection.fields {
                    let place = "\(collection.name).\(field.name)"
                    var known = true
                    if let category = field.category, taxonomy[category] == nil {
                        issue(system, place, "unknown category '\(category)' (not in taxonomy.yaml)")
                        known = false
                    }
                    if let reference = field.references {
                        let target = byKey[reference.system ?? system.system.key]?.system
                        if target?.collection(reference.collection)?.field(reference.field) == nil {
                            issue(system, place, "references \(reference), which is not declared")
                            dangling.insert(CollectionNode(system: system.system.key, collection: collection.name))
                        }
                    }
                    // The erasure lint: a personal field must say what erasure does to it.
                    if known, map.isPersonal(field), map.erasure(of: field) == nil {
                        issue(
                            system, place,
                            "personal field has no erasure strategy: its category \(field.category.map { "'\($0)' " } ?? "")has no default; set erasure (delete_row, null, mask, hash, or keep with keep_reason)"
                        )
                    }
                }
            }
        }
        // Reachability and cycles over the files without issues of their own, and not from a collection
        // whose reference dangles (reported above).
        issues += reachability(systems, map: map, skipping: dangling)
        issues += cycles(systems, map: map)
        return issues
    }

    /// A collection node: `system.collection`.
    struct CollectionNode: Hashable, CustomStringConvertible {
        var system: String
        var collection: String
        var description: String { "\(system).\(collection)" }
    }

    /// Collections holding personal data that no identity reaches along references (either way).
    static func reachability(_ systems: [ParsedSystem], map: DataMap, skipping: Set<CollectionNode>) -> [PolicyIssue] {
        var neighbours: [CollectionNode: Set<CollectionNode>] = [:]
        var start: [CollectionNode] = []
        for system in systems {
            for collection in system.system.collections {
                let node = CollectionNode(system: system.system.key, collection: collection.name)
                neighbours[node, default: []].formUnion([])
                if collection.fields.contains(where: { $0.identity != nil }) { start.append(node) }
                for field in collection.fields {
                    guard let reference = field.references else { continue }
                    let target = CollectionNode(
                        system: reference.system ?? system.system.key, collection: reference.collection)
                    neighbours[node, default: []].insert(target)
                    neighbours[target, default: []].insert(node)
                }
            }
        }
        var reached = Set(start)
        var queue = start
        while let node = queue.popLast() {
            for next in neighbours[node] ?? [] where reached.insert(next).inserted { queue.append(next) }
        }
        var issues: [PolicyIssue] = []
        for system in systems where system.clean {
            for collection in system.system.collections
            where !reached.contains(CollectionNode(system: system.system.key, collection: collection.name))
                && !skipping.contains(CollectionNode(system: system.system.key, collection: collection.name))
                && collection.fields.contains(where: map.isPersonal)
            {
                let (line, keyPath) = system.place(collection.name)
                issues.append(
                    PolicyIssue(
                        file: system.file, line: line, keyPath: keyPath,
                        reason:
                            "no identity reaches '\(collection.name)', which holds personal data: mark the field that identifies a person (identity:) or reference a collection that has one"
                    ))
            }
        }
        return issues
    }

    /// Reference cycles that erasure could not order (children before parents), unless one of the
    /// cycle's referencing fields is erased by `null` (the link is cut first).
    static func cycles(_ systems: [ParsedSystem], map: DataMap) -> [PolicyIssue] {
        struct Edge {
            var to: CollectionNode
            var field: String
            var cuttable: Bool
        }
        var edges: [CollectionNode: [Edge]] = [:]
        var order: [CollectionNode] = []
        var owners: [CollectionNode: ParsedSystem] = [:]
        for system in systems {
            for collection in system.system.collections {
                let node = CollectionNode(system: system.system.key, collection: collection.name)
                order.append(node)
                owners[node] = system
                for field in collection.fields {
                    guard let reference = field.references else { continue }
                    edges[node, default: []].append(
                        Edge(
                            to: CollectionNode(
                                system: reference.system ?? system.system.key, collection: reference.collection),
                            field: field.name, cuttable: map.erasure(of: field) == .null))
                }
            }
        }
        var issues: [PolicyIssue] = []
        var reported: Set<Set<CollectionNode>> = []
        // Depth-first search from each node, following uncuttable edges only: any cycle found is one
        // erasure cannot order.
        enum Mark { case visiting, done }
        var marks: [CollectionNode: Mark] = [:]
        var stack: [(node: CollectionNode, field: String)] = []
        func visit(_ node: CollectionNode) {
            marks[node] = .visiting
            for edge in edges[node] ?? [] where !edge.cuttable {
                stack.append((node, edge.field))
                if marks[edge.to] == .visiting {
                    let start = stack.firstIndex { $0.node == edge.to } ?? 0
                    let cycle = stack[start...]
                    let members = Set(cycle.map(\.node))
                    if reported.insert(members).inserted, let first = cycle.first, let system = owners[first.node] {
                        let path = (cycle.map { "\($0.node).\($0.field)" } + [edge.to.description]).joined(
                            separator: " → ")
                        let (line, keyPath) = system.place("\(first.node.collection).\(first.field)")
                        issues.append(
                            PolicyIssue(
                                file: system.file, line: line, keyPath: keyPath,
                                reason:
                                    "reference cycle \(path): erasure cannot delete children before parents; make one of these references erasure null"
                            ))
                    }
                } else if marks[edge.to] == nil {
                    visit(edge.to)
                }
                stack.removeLast()
            }
            marks[node] = .done
        }
        for node in order where marks[node] == nil && owners[node]?.clean == true { visit(node) }
        return issues
    }
}

extension Reader {
    /// Parses a YAML document that must be a mapping with only `allowed` keys.
    mutating func document(_ data: Data, allowed: Set<String>) -> (root: Node, map: [String: Node])? {
        guard let text = String(data: data, encoding: .utf8) else {
            issues.append(PolicyIssue(file: file, line: nil, keyPath: "", reason: "not UTF-8 text"))
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            issues.append(yamlIssue(error))
            return nil
        } catch {
            issues.append(PolicyIssue(file: file, line: nil, keyPath: "", reason: "YAML error"))
            return nil
        }
        guard let root, let map = mapping(root, at: "", allowed: allowed) else {
            if root == nil { issue(nil, "", "the file is empty") }
            return nil
        }
        return (root, map)
    }

    mutating func version(_ map: [String: Node], root: Node) {
        if let version = map["version"] {
            if version.int != 1 { issue(version, "version", "unsupported version (expected 1)") }
        } else {
            issue(root, "version", "is required (use `version: 1`)")
        }
    }

    /// A name that meets SQL: validated as an identifier, so it can be quoted safely.
    mutating func identifier(_ node: Node?, parent: Node?, at path: String) -> String? {
        guard let name = string(node, parent: parent, at: path, required: true) else { return nil }
        guard SQLIdentifier.isValid(name) else {
            issue(node, path, "is not a valid SQL name (letters, digits and _, not starting with a digit, at most 63)")
            return nil
        }
        return name
    }
}
