/// A permission one route or command declares. Deny by default: a principal holds only what its role grants.
public enum Permission: String, Sendable, CaseIterable, Codable, Hashable {
    case consentRecord = "consent:record"
    case consentCheck = "consent:check"
    case consentRead = "consent:read"
    case subjectsManage = "subjects:manage"
    case policyRead = "policy:read"
    case auditRead = "audit:read"
    case keysManage = "keys:manage"
    case jobsRead = "jobs:read"
    case jobsManage = "jobs:manage"
    /// Read the taxonomy and the data map, and compare a system with its map (drift).
    case dataMapRead = "datamap:read"
    /// Sample a customer system's rows to propose categories (discovery).
    case dataMapScan = "datamap:scan"
    /// Compliance reports: the records of processing, minimisation.
    case reportsRead = "reports:read"
    /// Submit a data subject request on a person's behalf (pre-verified or as their agent).
    case requestsCreate = "requests:create"
    /// See data subject requests: statuses, deadlines, each system's receipt (counts, never values).
    case requestsRead = "requests:read"
    /// Verify, approve, deny, extend and cancel data subject requests (a privacy officer).
    case requestsManage = "requests:manage"
    /// Download an access or portability request's export package: the person's data itself, so
    /// not the auditors' (who see receipts: counts, never values).
    case requestsExport = "requests:export"
}

/// A role: a named set of permissions. (Roles move to `Policies/roles.yaml` with the access-control work.)
public enum Role: String, Sendable, CaseIterable, Codable, Hashable {
    case admin
    /// Backend services: record and check consent, read consent state, read the policy.
    case service
    /// Auditors: read the audit log and the policy.
    case auditor

    public var permissions: Set<Permission> {
        switch self {
        case .admin: Set(Permission.allCases)
        case .service:
            [.consentRecord, .consentCheck, .consentRead, .policyRead, .requestsCreate, .requestsRead, .requestsExport]
        case .auditor: [.auditRead, .policyRead, .jobsRead, .dataMapRead, .reportsRead, .requestsRead]
        }
    }

    /// What the role may do, in words, for `steward keys create --help` and the docs.
    public var summary: String {
        switch self {
        case .admin:
            "everything a service may do, and link identities, merge subjects, create and revoke API keys, read and verify the audit log, see, cancel and retry jobs, read the data map, scan customer systems, read the compliance reports, and verify, approve, deny, extend and cancel data subject requests"
        case .service:
            "backend services: record consent (one, bulk), confirm double opt-in, check consent, find subjects and read their consent and history, list audiences, read purposes and notices, submit data subject requests on a person's behalf, follow them and download their export packages"
        case .auditor:
            "auditors: read and verify the audit log, see jobs, read purposes and notices, the data map and its drift, the compliance reports and data subject requests' statuses and receipts; no consent or subject data, no sampling of customer systems"
        }
    }

    /// Checked on every request: a switch, no set built.
    public func allows(_ permission: Permission) -> Bool {
        switch self {
        case .admin: true
        case .service:
            permission == .consentRecord || permission == .consentCheck || permission == .consentRead
                || permission == .policyRead || permission == .requestsCreate || permission == .requestsRead
                || permission == .requestsExport
        case .auditor:
            permission == .auditRead || permission == .policyRead || permission == .jobsRead
                || permission == .dataMapRead || permission == .reportsRead || permission == .requestsRead
        }
    }
}

/// Who is calling: an API key (by its id, never its secret) or an operator at the command line.
public struct Principal: Sendable, Hashable {
    public var id: String
    public var name: String
    public var role: Role

    public init(id: String, name: String, role: Role) {
        self.id = id
        self.name = name
        self.role = role
    }

    /// The actor string written to audit entries, e.g. `key:0b6c…`.
    public var actor: String { id }
}
