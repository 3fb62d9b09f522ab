public import Foundation
public import StewardCore

/// Reads of data subject requests.
public protocol RequestReading: Sendable {
    func dataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord?
    func dataSubjectRequests(_ filter: RequestFilter) async throws -> [DataSubjectRequestRecord]
}

/// Writes of data subject requests: a new one, or a whole row replaced by id.
public protocol RequestWriting: RequestReading {
    func insertDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws
    func updateDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws
}

/// One system's part of a request: the job that carries it out and, once done, its receipt (JSON,
/// counts and names only) and, for access and portability, the rows read, sealed.
public struct RequestTaskRecord: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, Codable {
        case pending
        case done
    }

    public var requestID: UUID
    public var system: String
    public var jobID: UUID
    public var state: State
    public var receipt: String?
    public var sealedRows: Data?
    public var updatedAt: Date

    public init(
        requestID: UUID, system: String, jobID: UUID, state: State, receipt: String? = nil, sealedRows: Data? = nil,
        updatedAt: Date
    ) {
        self.requestID = requestID
        self.system = system
        self.jobID = jobID
        self.state = state
        self.receipt = receipt
        self.sealedRows = sealedRows
        self.updatedAt = updatedAt
    }
}

/// What Steward keeps of an erased person: one keyed hash (the blind index) per identity, with the
/// erasure's request — enough to recognise the person in a restored system, never to read them.
public struct SuppressionRecord: Sendable, Hashable {
    public var kind: IdentityKind
    public var blindIndex: Data
    public var requestID: UUID
    public var erasedAt: Date

    public init(kind: IdentityKind, blindIndex: Data, requestID: UUID, erasedAt: Date) {
        self.kind = kind
        self.blindIndex = blindIndex
        self.requestID = requestID
        self.erasedAt = erasedAt
    }
}

/// Reads of requests' per-system tasks and of the suppression entries.
public protocol RequestTaskReading: Sendable {
    func requestTasks(requestID: UUID) async throws -> [RequestTaskRecord]
    /// Every task not done yet (open requests' work: few), oldest change first.
    func pendingRequestTasks() async throws -> [RequestTaskRecord]
    /// Suppression entries of erasures completed at or after `since`, oldest first.
    func suppressions(since: Date) async throws -> [SuppressionRecord]
    /// A request's sealed particulars (`RequestDetails`; nil: none stored, or deleted once it finished).
    func requestDetails(requestID: UUID) async throws -> Data?
    /// The request a download link's token (its SHA-256) opens, and when the link was made.
    func packageLink(hash: Data) async throws -> (requestID: UUID, createdAt: Date)?
}

/// Writes of requests' per-system tasks, and the request row locked for a change that depends on
/// all of its tasks (the last task to finish completes the request, exactly once).
public protocol RequestTaskWriting: RequestTaskReading {
    func insertRequestTask(_ task: RequestTaskRecord) async throws
    func updateRequestTask(_ task: RequestTaskRecord) async throws
    func lockDataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord?
    /// Records (or renews) the entry of an identity.
    func insertSuppression(_ entry: SuppressionRecord) async throws
    /// Deletes every identity of the subject; the number deleted.
    func deleteIdentities(subjectID: UUID) async throws -> Int
    /// Records an identity verification token (its SHA-256) of a request; a request's earlier
    /// unused tokens are deleted (a new one replaces them).
    func insertRequestToken(hash: Data, requestID: UUID, expiresAt: Date) async throws
    /// The token with this hash, locked for the transaction (nil: no such token).
    func requestToken(hash: Data) async throws -> RequestTokenRecord?
    func markRequestTokenUsed(hash: Data, at: Date) async throws
    func insertRequestDetails(requestID: UUID, sealed: Data) async throws
    func deleteRequestDetails(requestID: UUID) async throws
    /// Records a download link (its token's SHA-256) to a request's export package.
    func insertPackageLink(hash: Data, requestID: UUID, createdAt: Date) async throws
    /// Deletes the sealed rows (the export package's data) of every request that finished before
    /// `finishedBefore`; the requests whose rows were deleted.
    func purgeSealedRows(finishedBefore: Date, now: Date) async throws -> [UUID]
}

/// An identity verification token of a request, as stored: by its hash, never the token.
public struct RequestTokenRecord: Sendable, Hashable {
    public var requestID: UUID
    public var expiresAt: Date
    public var usedAt: Date?

    public init(requestID: UUID, expiresAt: Date, usedAt: Date?) {
        self.requestID = requestID
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}
