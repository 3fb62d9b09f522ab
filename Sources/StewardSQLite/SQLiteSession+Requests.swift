import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// Data subject requests, on SQLiteSession.
extension SQLiteSession {
    static let requestColumns = """
        id, type, regime, status, subject_id, received_at, received_on, due_on, due_at, acknowledge_on,
        acknowledge_by, extended_on, extension_reason, verification, denial, agent, submitted_by, created_at,
        updated_at, finished_at
        """

    static func request(_ row: SQLiteConnection.Row) throws -> DataSubjectRequestRecord {
        func parsed<T: RawRepresentable>(_ type: T.Type, _ column: Int32, _ name: String) throws -> T
        where T.RawValue == String {
            guard let value = T(rawValue: row.text(column)) else {
                throw StoreError.integrity("dsr_requests.\(name) holds a value this version does not know")
            }
            return value
        }
        func optional<T: RawRepresentable>(_ type: T.Type, _ column: Int32, _ name: String) throws -> T?
        where T.RawValue == String {
            row.isNull(column) ? nil : try parsed(type, column, name)
        }
        func date(_ column: Int32, _ name: String) throws -> CivilDate {
            guard let date = CivilDate(parsing: row.text(column)) else {
                throw StoreError.integrity("dsr_requests.\(name) is not a date")
            }
            return date
        }
        return DataSubjectRequestRecord(
            id: try row.uuid(0), type: try parsed(RequestType.self, 1, "type"), regime: row.text(2),
            status: try parsed(RequestStatus.self, 3, "status"), subjectID: try row.uuid(4),
            receivedAt: row.time(5),
            deadlines: RequestDeadlines(
                receivedOn: try date(6, "received_on"), dueOn: try date(7, "due_on"), due: row.time(8),
                acknowledgeOn: row.isNull(9) ? nil : try date(9, "acknowledge_on"), acknowledgeBy: row.optionalTime(10),
                extendedOn: row.isNull(11) ? nil : try date(11, "extended_on"), extensionReason: row.optionalText(12)),
            verification: try optional(VerificationMethod.self, 13, "verification"),
            denial: try optional(DenialReason.self, 14, "denial"), agent: row.optionalText(15),
            submittedBy: row.text(16), createdAt: row.time(17), updatedAt: row.time(18),
            finishedAt: row.optionalTime(19))
    }

    static func values(_ request: DataSubjectRequestRecord) -> [SQLValue] {
        [
            .uuid(request.id), .text(request.type.rawValue), .text(request.regime), .text(request.status.rawValue),
            .uuid(request.subjectID), .time(request.receivedAt), .text(request.deadlines.receivedOn.description),
            .text(request.deadlines.dueOn.description), .time(request.deadlines.due),
            .text(request.deadlines.acknowledgeOn?.description), .time(request.deadlines.acknowledgeBy),
            .text(request.deadlines.extendedOn?.description), .text(request.deadlines.extensionReason),
            .text(request.verification?.rawValue), .text(request.denial?.rawValue), .text(request.agent),
            .text(request.submittedBy), .time(request.createdAt), .time(request.updatedAt), .time(request.finishedAt),
        ]
    }

    func dataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord? {
        try connection.query(
            "SELECT \(Self.requestColumns) FROM dsr_requests WHERE id = ?", [.uuid(id)], Self.request
        ).first
    }

    func dataSubjectRequests(_ filter: RequestFilter) async throws -> [DataSubjectRequestRecord] {
        var conditions: [String] = []
        var values: [SQLValue] = []
        if !filter.statuses.isEmpty {
            conditions.append("status IN (\(filter.statuses.map { _ in "?" }.joined(separator: ", ")))")
            values += filter.statuses.map(\.rawValue).sorted().map { .text($0) }
        }
        if let type = filter.type {
            conditions.append("type = ?")
            values.append(.text(type.rawValue))
        }
        if let regime = filter.regime {
            conditions.append("regime = ?")
            values.append(.text(regime))
        }
        if let due = filter.dueBefore {
            conditions.append("due_at < ?")
            values.append(.time(due))
        }
        if let after = filter.after {
            conditions.append("(due_at, id) > (SELECT due_at, id FROM dsr_requests WHERE id = ?)")
            values.append(.uuid(after))
        }
        values.append(.int(Int64(filter.limit)))
        let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try connection.query(
            "SELECT \(Self.requestColumns) FROM dsr_requests \(clause) ORDER BY due_at, id LIMIT ?", values,
            Self.request)
    }

    func insertDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws {
        try connection.run(
            "INSERT INTO dsr_requests (\(Self.requestColumns)) VALUES (\(Array(repeating: "?", count: 20).joined(separator: ", ")))",
            Self.values(request))
    }

    func updateDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws {
        let assignments = Self.requestColumns.split(separator: ",").dropFirst()
            .map { "\($0.trimmingCharacters(in: .whitespacesAndNewlines)) = ?" }.joined(separator: ", ")
        let values = Self.values(request)
        try connection.run(
            "UPDATE dsr_requests SET \(assignments) WHERE id = ?", Array(values.dropFirst()) + [values[0]])
    }
}

/// Requests' per-system tasks, on SQLiteSession.
extension SQLiteSession {
    static func task(_ row: SQLiteConnection.Row) throws -> RequestTaskRecord {
        guard let state = RequestTaskRecord.State(rawValue: row.text(3)) else {
            throw StoreError.integrity("dsr_tasks.state holds a value this version does not know")
        }
        return RequestTaskRecord(
            requestID: try row.uuid(0), system: row.text(1), jobID: try row.uuid(2), state: state,
            receipt: row.optionalText(4), sealedRows: row.isNull(5) ? nil : row.blob(5), updatedAt: row.time(6))
    }

    func requestTasks(requestID: UUID) async throws -> [RequestTaskRecord] {
        try connection.query(
            """
            SELECT request_id, system, job_id, state, receipt, sealed_rows, updated_at FROM dsr_tasks
            WHERE request_id = ? ORDER BY system
            """, [.uuid(requestID)], Self.task)
    }

    func pendingRequestTasks() async throws -> [RequestTaskRecord] {
        try connection.query(
            """
            SELECT request_id, system, job_id, state, receipt, sealed_rows, updated_at FROM dsr_tasks
            WHERE state = 'pending' ORDER BY updated_at
            """, [], Self.task)
    }

    func insertRequestTask(_ task: RequestTaskRecord) async throws {
        try connection.run(
            """
            INSERT INTO dsr_tasks (request_id, system, job_id, state, receipt, sealed_rows, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .uuid(task.requestID), .text(task.system), .uuid(task.jobID), .text(task.state.rawValue),
                .text(task.receipt), task.sealedRows.map { .blob($0) } ?? .null, .time(task.updatedAt),
            ])
    }

    func updateRequestTask(_ task: RequestTaskRecord) async throws {
        try connection.run(
            """
            UPDATE dsr_tasks SET job_id = ?, state = ?, receipt = ?, sealed_rows = ?, updated_at = ?
            WHERE request_id = ? AND system = ?
            """,
            [
                .uuid(task.jobID), .text(task.state.rawValue), .text(task.receipt),
                task.sealedRows.map { .blob($0) } ?? .null, .time(task.updatedAt), .uuid(task.requestID),
                .text(task.system),
            ])
    }

    /// The writer holds SQLite's only write lock already: a plain read.
    func lockDataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord? {
        try await dataSubjectRequest(id: id)
    }
}

/// Suppression entries, on SQLiteSession.
extension SQLiteSession {
    func suppressions(since: Date) async throws -> [SuppressionRecord] {
        try connection.query(
            "SELECT kind, blind_index, request_id, erased_at FROM suppressions WHERE erased_at >= ? ORDER BY erased_at",
            [.time(since)]
        ) { row in
            SuppressionRecord(
                kind: try StoreError.stored(IdentityKind.self, row.text(0), column: "suppressions.kind"),
                blindIndex: row.blob(1), requestID: try row.uuid(2), erasedAt: row.time(3))
        }
    }

    func requestDetails(requestID: UUID) async throws -> Data? {
        try connection.query("SELECT sealed FROM dsr_details WHERE request_id = ?", [.uuid(requestID)]) {
            $0.blob(0)
        }.first
    }

    func insertRequestDetails(requestID: UUID, sealed: Data) async throws {
        try connection.run(
            "INSERT INTO dsr_details (request_id, sealed) VALUES (?, ?)", [.uuid(requestID), .blob(sealed)])
    }

    func deleteRequestDetails(requestID: UUID) async throws {
        try connection.run("DELETE FROM dsr_details WHERE request_id = ?", [.uuid(requestID)])
    }

    func packageLink(hash: Data) async throws -> (requestID: UUID, createdAt: Date)? {
        try connection.query("SELECT request_id, created_at FROM dsr_links WHERE token_hash = ?", [.blob(hash)]) {
            (try $0.uuid(0), $0.time(1))
        }.first
    }

    func insertPackageLink(hash: Data, requestID: UUID, createdAt: Date) async throws {
        try connection.run(
            "INSERT INTO dsr_links (token_hash, request_id, created_at) VALUES (?, ?, ?)",
            [.blob(hash), .uuid(requestID), .time(createdAt)])
    }

    func insertRequestToken(hash: Data, requestID: UUID, expiresAt: Date) async throws {
        try connection.run("DELETE FROM dsr_tokens WHERE request_id = ? AND used_at IS NULL", [.uuid(requestID)])
        try connection.run(
            "INSERT INTO dsr_tokens (token_hash, request_id, expires_at) VALUES (?, ?, ?)",
            [.blob(hash), .uuid(requestID), .time(expiresAt)])
    }

    /// The writer holds SQLite's only write lock already: a plain read.
    func requestToken(hash: Data) async throws -> RequestTokenRecord? {
        try connection.query(
            "SELECT request_id, expires_at, used_at FROM dsr_tokens WHERE token_hash = ?", [.blob(hash)]
        ) { row in
            RequestTokenRecord(requestID: try row.uuid(0), expiresAt: row.time(1), usedAt: row.optionalTime(2))
        }.first
    }

    func markRequestTokenUsed(hash: Data, at: Date) async throws {
        try connection.run("UPDATE dsr_tokens SET used_at = ? WHERE token_hash = ?", [.time(at), .blob(hash)])
    }

    func purgeSealedRows(finishedBefore: Date, now: Date) async throws -> [UUID] {
        let ids = try connection.query(
            """
            UPDATE dsr_tasks SET sealed_rows = NULL, updated_at = ?
            WHERE sealed_rows IS NOT NULL
                AND request_id IN (SELECT id FROM dsr_requests WHERE finished_at IS NOT NULL AND finished_at < ?)
            RETURNING request_id
            """, [.time(now), .time(finishedBefore)]
        ) { row in try row.uuid(0) }
        return Array(Set(ids)).sorted { $0.uuidString < $1.uuidString }
    }

    func insertSuppression(_ entry: SuppressionRecord) async throws {
        try connection.run(
            "INSERT OR REPLACE INTO suppressions (kind, blind_index, request_id, erased_at) VALUES (?, ?, ?, ?)",
            [.text(entry.kind.rawValue), .blob(entry.blindIndex), .uuid(entry.requestID), .time(entry.erasedAt)])
    }

    func deleteIdentities(subjectID: UUID) async throws -> Int {
        answers?.note(.subject(subjectID))
        return try connection.run("DELETE FROM identities WHERE subject_id = ?", [.uuid(subjectID)])
    }
}
