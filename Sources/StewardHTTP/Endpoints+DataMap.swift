import Foundation
import Hummingbird
import NIOCore
import StewardConnectors
import StewardCore
import StewardServices

/// The data map, drift, discovery and compliance reports (issue 17 items 5, 7 and 9). Read-only:
/// nothing here changes Steward's store; drift reads a system's schema, discovery samples its rows
/// and keeps only counts.
func dataMapEndpoints(api: StewardAPI) -> [Endpoint] {
    let map = api.policy.dataMap
    @Sendable func system(_ context: StewardRequestContext) throws -> DataSystem {
        let key = context.parameters.get("system") ?? ""
        guard let system = map.system(key) else {
            throw StewardError(.systemUnknown, "no system has this key", field: "system")
        }
        return system
    }
    @Sendable func connection(_ system: DataSystem) throws -> SystemConnection {
        do {
            return try api.customerSystems.connection(system)
        } catch let error as ConnectorError {
            throw StewardError(error.code, error.description)
        }
    }
    /// A connector's failure as a catalogued problem: its message names the system and place, never
    /// a value or a secret.
    @Sendable func reading<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ConnectorError {
            throw StewardError(error.code, error.description)
        } catch let error as StewardError {
            throw error
        } catch {
            // A driver's own error (a file that is not a database, a dropped connection): the system
            // could not be read; its message stays out of the answer.
            throw StewardError(.connectorUnavailable, "the system could not be read")
        }
    }
    return [
        Endpoint(.get, "/v1/datamap/taxonomy", .dataMapRead) { _, _ in
            try json(["categories": map.taxonomy.order.compactMap { map.taxonomy[$0] }.map(CategoryDTO.init)])
        },
        Endpoint(.get, "/v1/datamap/systems", .dataMapRead) { _, _ in
            try json(["systems": map.systems.sorted { $0.key < $1.key }.map { SystemSummaryDTO($0, map: map) }])
        },
        Endpoint(.get, "/v1/datamap/systems/{system}", .dataMapRead) { _, context in
            try json(SystemDTO(try system(context), map: map))
        },
        Endpoint(.get, "/v1/datamap/systems/{system}/drift", .dataMapRead) { _, context in
            let declared = try system(context)
            let source = try connection(declared)
            let schema = try await reading { try await source.introspect() }
            let drift = schema.drift(from: declared)
            return try json(
                DriftDTO(
                    system: declared.key, matches: drift.isEmpty, tables: schema.tables.count,
                    columns: schema.tables.reduce(0) { $0 + $1.columns.count },
                    differences: drift.map {
                        DriftDTO.Difference(
                            kind: $0.kind.rawValue, table: $0.table, column: $0.column, target: $0.target,
                            message: $0.description)
                    }))
        },
        Endpoint(.get, "/v1/datamap/systems/{system}/proposals", .dataMapScan) { request, context in
            let declared = try system(context)
            var sample = SystemScan.defaultSample
            if let text = request.query("sample") {
                guard let value = Int(text), (1...SystemScan.maximumSample).contains(value) else {
                    throw StewardError(.scanInvalidSample, "must be an integer from 1 to 100000", field: "sample")
                }
                sample = value
            }
            let all: Bool
            switch request.query("all") {
            case nil, "false": all = false
            case "true": all = true
            default: throw StewardError(.requestInvalidValue, "must be true or false", field: "all")
            }
            let source = try connection(declared)
            let report = try await reading {
                try await SystemScan.scan(
                    source, system: declared, key: declared.key, scope: all ? .all : .unclassified, sampleSize: sample)
            }
            return try json(ProposalsDTO(report, generatedAt: api.consent.runtime.now()))
        },
        Endpoint(.get, "/v1/reports/ropa", .reportsRead) { request, _ in
            let text = request.query("format") ?? "json"
            guard let format = RecordsOfProcessing.Format(rawValue: text) else {
                throw StewardError(.reportInvalidFormat, "must be json, csv or html", field: "format")
            }
            let records = RecordsOfProcessing(policy: api.policy)
            var headers: HTTPFields = [.contentType: format.contentType]
            if format != .json {
                headers[.contentDisposition] = "attachment; filename=\"records-of-processing.\(format.rawValue)\""
            }
            return Response(
                status: .ok, headers: headers,
                body: .init(
                    byteBuffer: ByteBuffer(string: records.rendered(format, generatedAt: api.consent.runtime.now()))))
        },
        // CCPA §7102: one calendar year's request metrics (counts and days, never an identity).
        Endpoint(.get, "/v1/reports/requests", .reportsRead) { request, _ in
            guard let text = request.query("year"), let year = Int(text), (2000...2200).contains(year) else {
                throw StewardError(.requestInvalidValue, "must be a year from 2000 to 2200", field: "year")
            }
            let metrics = try await api.requests.metrics(regime: request.query("regime") ?? "ccpa", year: year)
            switch request.query("format") ?? "json" {
            case "json": return try json(metrics)
            case "csv":
                return Response(
                    status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: metrics.csv)))
            default: throw StewardError(.reportInvalidFormat, "must be json or csv", field: "format")
            }
        },
        Endpoint(.get, "/v1/reports/minimisation", .reportsRead) { _, _ in
            let findings = map.minimisation(purposes: Array(api.policy.purposes.keys))
            return try json(
                MinimisationDTO(
                    findings: findings.map { .init(kind: $0.kind.rawValue, place: $0.place, detail: $0.detail) }))
        },
    ]
}

struct CategoryDTO: Encodable {
    var key: String
    var description: String
    var sensitivity: String
    var gdprSpecial: Bool
    var gdprCriminal: Bool
    var ccpaSensitive: Bool
    var erasure: String?
    var keepReason: String?

    init(_ category: DataCategory) {
        key = category.key
        description = category.description
        sensitivity = category.sensitivity.rawValue
        gdprSpecial = category.gdprSpecial
        gdprCriminal = category.gdprCriminal
        ccpaSensitive = category.ccpaSensitive
        erasure = category.erasure?.rawValue
        keepReason = category.keepReason
    }
}

struct SystemSummaryDTO: Encodable {
    var key: String
    var name: String
    var kind: String
    var owner: String?
    var purposes: [String]
    var location: String?
    var processor: String?
    var collections: Int
    var fields: Int
    var personalFields: Int

    init(_ system: DataSystem, map: DataMap) {
        key = system.key
        name = system.name
        kind = system.kind.rawValue
        owner = system.owner
        purposes = system.purposes
        location = system.processing.location
        processor = system.processing.processor
        let all = system.collections.flatMap(\.fields)
        collections = system.collections.count
        fields = all.count
        personalFields = all.filter(map.isPersonal).count
    }
}

/// A system as the map declares it, each field with its effective erasure strategy and purposes.
/// The connection is named by reference kind only (`env` or `file`), never resolved.
struct SystemDTO: Encodable {
    struct Field: Encodable {
        var name: String
        var category: String?
        var sensitivity: String?
        var personal: Bool
        var identity: String?
        var references: String?
        var erasure: String?
        var erasureFrom: String?
        var keepReason: String?
        var purposes: [String]
        var protection: String?
    }
    struct Collection: Encodable {
        var name: String
        var primaryKey: [String]
        var fields: [Field]
    }
    var key: String
    var name: String
    var kind: String
    var connection: String
    var owner: String?
    var purposes: [String]
    var dataSubjects: [String]
    var location: String?
    var processor: String?
    var recipients: [String]
    var transferSafeguard: String?
    var retention: String?
    var collections: [Collection]

    init(_ system: DataSystem, map: DataMap) {
        key = system.key
        name = system.name
        kind = system.kind.rawValue
        connection =
            switch system.connection {
            case .environment: "env"
            case .file: "file"
            }
        owner = system.owner
        purposes = system.purposes
        dataSubjects = system.processing.dataSubjects
        location = system.processing.location
        processor = system.processing.processor
        recipients = system.processing.recipients
        transferSafeguard = system.processing.transferSafeguard
        retention = system.processing.retention
        collections = system.collections.map { collection in
            Collection(
                name: collection.name, primaryKey: collection.primaryKey,
                fields: collection.fields.map { field in
                    let category = field.category.flatMap { map.taxonomy[$0] }
                    let erasure = map.erasure(of: field)
                    return Field(
                        name: field.name, category: field.category, sensitivity: category?.sensitivity.rawValue,
                        personal: map.isPersonal(field), identity: field.identity?.rawValue,
                        references: field.references?.description, erasure: erasure?.rawValue,
                        erasureFrom: erasure == nil ? nil : field.erasure != nil ? "field" : "category",
                        keepReason: field.keepReason ?? (field.erasure == nil ? category?.keepReason : nil),
                        purposes: field.purposes ?? system.purposes, protection: field.protection?.rawValue)
                })
        }
    }
}

struct DriftDTO: Encodable {
    struct Difference: Encodable {
        var kind: String
        var table: String
        var column: String?
        var target: String?
        var message: String
    }
    var system: String
    var matches: Bool
    var tables: Int
    var columns: Int
    var differences: [Difference]
}

/// Discovery's answer: counts and reasons only, never a sampled value.
struct ProposalsDTO: Encodable {
    struct Column: Encodable {
        var table: String
        var column: String
        var status: String
        var category: String?
        var confidence: Double
        var reason: String
        var sampled: Int
        var identity: String?
        var mapCategory: String?
    }
    var system: String
    var sampleSize: Int
    var seconds: Double
    var proposed: Int
    var toReview: Int
    var nothingFound: Int
    var disagreeWithMap: Int
    var columns: [Column]
    /// The proposal file, in the systems YAML shape.
    var yaml: String

    init(_ report: SystemScan.Report, generatedAt: Date) {
        system = report.system
        sampleSize = report.sampleSize
        seconds = report.seconds
        proposed = report.proposed.count
        toReview = report.toReview.count
        nothingFound = report.nothingFound.count
        disagreeWithMap = report.disagreements.count
        columns = report.proposals.map { proposal in
            Column(
                table: proposal.table, column: proposal.column,
                status: proposal.isProposed ? "proposed" : proposal.category == nil ? "nothing_found" : "review",
                category: proposal.category, confidence: proposal.confidence, reason: proposal.reason,
                sampled: proposal.sampled, identity: proposal.identity?.rawValue,
                mapCategory: report.declared["\(proposal.table).\(proposal.column)"])
        }
        yaml = report.yaml(generatedAt: generatedAt)
    }
}

struct MinimisationDTO: Encodable {
    struct Finding: Encodable {
        var kind: String
        var place: String
        var detail: String
    }
    var findings: [Finding]
}
