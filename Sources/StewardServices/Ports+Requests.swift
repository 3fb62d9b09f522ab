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
