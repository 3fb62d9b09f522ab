import Foundation
import PostgresNIO
import StewardCore
import StewardServices

/// Data subject requests, on PostgresSession.
extension PostgresSession {
    static let requestColumns = """
        id, type, regime, status, subject_id, received_at, received_on, due_on, due_at, acknowledge_on,
        acknowledge_by, extended_on, extension_reason, verification, denial, agent, submitted_by, created_at,
        updated_at, finished_at
        """

    static func request(_ row: PostgresRow) throws -> DataSubjectRequestRecord {
        let cells = row.makeRandomAccess()
        func parsed<T: RawRepresentable>(_ type: T.Type, _ index: Int, _ name: String) throws -> T?
        where T.RawValue == String {
            guard let text = try cells[index].decode(String?.self) else { return nil }
            guard let value = T(rawValue: text) else {
                throw StoreError.integrity("dsr_requests.\(name) holds a value this version does not know")
            }
            return value
        }
        func date(_ index: Int, _ name: String) throws -> CivilDate? {
            guard let text = try cells[index].decode(String?.self) else { return nil }
            guard let date = CivilDate(parsing: text) else {
                throw StoreError.integrity("dsr_requests.\(name) is not a date")
            }
            return date
        }
        func time(_ index: Int) throws -> Date? { try cells[index].decode(Int64?.self).map(Timestamp.date(micros:)) }
        guard let type = try parsed(RequestType.self, 1, "type"),
            let status = try parsed(RequestStatus.self, 3, "status"),
            let receivedOn = try date(6, "received_on"), let dueOn = try date(7, "due_on"), let due = try time(8),
            let receivedAt = try time(5), let createdAt = try time(17), let updatedAt = try time(18)
        else { throw StoreError.integrity("dsr_requests: a required column is empty") }
        return DataSubjectRequestRecord(
            id: try cells[0].decode(UUID.self), type: type, regime: try cells[2].decode(String.self), status: status,
            subjectID: try cells[4].decode(UUID.self), receivedAt: receivedAt,
            deadlines: RequestDeadlines(
                receivedOn: receivedOn, dueOn: dueOn, due: due, acknowledgeOn: try date(9, "acknowledge_on"),
                acknowledgeBy: try time(10), extendedOn: try date(11, "extended_on"),
                extensionReason: try cells[12].decode(String?.self)),
            verification: try parsed(VerificationMethod.self, 13, "verification"),
            denial: try parsed(DenialReason.self, 14, "denial"), agent: try cells[15].decode(String?.self),
            submittedBy: try cells[16].decode(String.self), createdAt: createdAt, updatedAt: updatedAt,
            finishedAt: try time(19))
    }

    func dataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord? {
        try await rows("SELECT \(unescaped: Self.requestColumns) FROM dsr_requests WHERE id = \(id)").first.map(
            Self.request)
    }

    func dataSubjectRequests(_ filter: RequestFilter) async throws -> [DataSubjectRequestRecord] {
        let statuses = filter.statuses.map(\.rawValue).sorted()
        let anyStatus = statuses.isEmpty
        let anyType = filter.type == nil
        let anyRegime = filter.regime == nil
        let anyDue = filter.dueBefore == nil
        let dueBefore = filter.dueBefore.map(Timestamp.micros) ?? 0
        return try await rows(
            """
            SELECT \(unescaped: Self.requestColumns) FROM dsr_requests
            WHERE (\(anyStatus) OR status = ANY(\(statuses)))
              AND (\(anyType) OR type = \(filter.type?.rawValue ?? ""))
              AND (\(anyRegime) OR regime = \(filter.regime ?? ""))
              AND (\(anyDue) OR due_at < \(dueBefore))
              AND (\(filter.after == nil) OR (due_at, id) > (SELECT due_at, id FROM dsr_requests WHERE id = \(filter.after)))
            ORDER BY due_at, id LIMIT \(filter.limit)
            """
        ).map(Self.request)
    }

    func insertDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws {
        let deadlines = request.deadlines
        try await run(
            """
            INSERT INTO dsr_requests (\(unescaped: Self.requestColumns)) VALUES (
                \(request.id), \(request.type.rawValue), \(request.regime), \(request.status.rawValue),
                \(request.subjectID), \(Timestamp.micros(request.receivedAt)), \(deadlines.receivedOn.description),
                \(deadlines.dueOn.description), \(Timestamp.micros(deadlines.due)), \(deadlines.acknowledgeOn?.description),
                \(deadlines.acknowledgeBy.map(Timestamp.micros)), \(deadlines.extendedOn?.description),
                \(deadlines.extensionReason), \(request.verification?.rawValue), \(request.denial?.rawValue),
                \(request.agent), \(request.submittedBy), \(Timestamp.micros(request.createdAt)),
                \(Timestamp.micros(request.updatedAt)), \(request.finishedAt.map(Timestamp.micros)))
            """)
    }

    func updateDataSubjectRequest(_ request: DataSubjectRequestRecord) async throws {
        let deadlines = request.deadlines
        try await run(
            """
            UPDATE dsr_requests SET type = \(request.type.rawValue), regime = \(request.regime),
                status = \(request.status.rawValue), subject_id = \(request.subjectID),
                received_at = \(Timestamp.micros(request.receivedAt)), received_on = \(deadlines.receivedOn.description),
                due_on = \(deadlines.dueOn.description), due_at = \(Timestamp.micros(deadlines.due)),
                acknowledge_on = \(deadlines.acknowledgeOn?.description),
                acknowledge_by = \(deadlines.acknowledgeBy.map(Timestamp.micros)),
                extended_on = \(deadlines.extendedOn?.description), extension_reason = \(deadlines.extensionReason),
                verification = \(request.verification?.rawValue), denial = \(request.denial?.rawValue),
                agent = \(request.agent), submitted_by = \(request.submittedBy),
                created_at = \(Timestamp.micros(request.createdAt)), updated_at = \(Timestamp.micros(request.updatedAt)),
                finished_at = \(request.finishedAt.map(Timestamp.micros))
            WHERE id = \(request.id)
            """)
    }
}

/// Requests' per-system tasks, on PostgresSession.
extension PostgresSession {
    static func task(_ row: PostgresRow) throws -> RequestTaskRecord {
        let (requestID, system, jobID, stateText, receipt, rows, updatedAt) = try row.decode(
            (UUID, String, UUID, String, String?, Data?, Int64).self)
        guard let state = RequestTaskRecord.State(rawValue: stateText) else {
            throw StoreError.integrity("dsr_tasks.state holds a value this version does not know")
        }
        return RequestTaskRecord(
            requestID: requestID, system: system, jobID: jobID, state: state, receipt: receipt,
            sealedRows: rows, updatedAt: Timestamp.date(micros: updatedAt))
    }

    func requestTasks(requestID: UUID) async throws -> [RequestTaskRecord] {
        try await rows(
            """
            SELECT request_id, system, job_id, state, receipt, sealed_rows, updated_at FROM dsr_tasks
            WHERE request_id = \(requestID) ORDER BY system
            """
        ).map(Self.task)
    }

    func pendingRequestTasks() async throws -> [RequestTaskRecord] {
        try await rows(
            """
            SELECT request_id, system, job_id, state, receipt, sealed_rows, updated_at FROM dsr_tasks
            WHERE state = 'pending' ORDER BY updated_at
            """
        ).map(Self.task)
    }

    func insertRequestTask(_ task: RequestTaskRecord) async throws {
        try await run(
            """
            INSERT INTO dsr_tasks (request_id, system, job_id, state, receipt, sealed_rows, updated_at)
            VALUES (\(task.requestID), \(task.system), \(task.jobID), \(task.state.rawValue), \(task.receipt),
                \(task.sealedRows.map { ByteBuffer(bytes: $0) }), \(Timestamp.micros(task.updatedAt)))
            """)
    }

    func updateRequestTask(_ task: RequestTaskRecord) async throws {
        try await run(
            """
            UPDATE dsr_tasks SET job_id = \(task.jobID), state = \(task.state.rawValue), receipt = \(task.receipt),
                sealed_rows = \(task.sealedRows.map { ByteBuffer(bytes: $0) }), updated_at = \(Timestamp.micros(task.updatedAt))
            WHERE request_id = \(task.requestID) AND system = \(task.system)
            """)
    }

    /// The request's row locked until the transaction ends: two tasks finishing at once see each
    /// other's state, and the request completes once.
    func lockDataSubjectRequest(id: UUID) async throws -> DataSubjectRequestRecord? {
        try await rows("SELECT \(unescaped: Self.requestColumns) FROM dsr_requests WHERE id = \(id) FOR UPDATE").first
            .map(Self.request)
    }
}

/// Suppression entries, on PostgresSession.
extension PostgresSession {
    func requestDetails(requestID: UUID) async throws -> Data? {
        try await rows("SELECT sealed FROM dsr_details WHERE request_id = \(requestID)").first.map {
            try $0.decode(Data.self)
        }
    }

    func insertRequestDetails(requestID: UUID, sealed: Data) async throws {
        try await run(
            "INSERT INTO dsr_details (request_id, sealed) VALUES (\(requestID), \(ByteBuffer(bytes: sealed)))")
    }

    func deleteRequestDetails(requestID: UUID) async throws {
        try await run("DELETE FROM dsr_details WHERE request_id = \(requestID)")
    }

    func packageLink(hash: Data) async throws -> (requestID: UUID, createdAt: Date)? {
        try await rows(
            "SELECT request_id, created_at FROM dsr_links WHERE token_hash = \(ByteBuffer(bytes: hash))"
        ).first.map { row in
            let (request, created) = try row.decode((UUID, Int64).self)
            return (request, Timestamp.date(micros: created))
        }
    }

    func insertPackageLink(hash: Data, requestID: UUID, createdAt: Date) async throws {
        try await run(
            """
            INSERT INTO dsr_links (token_hash, request_id, created_at)
            VALUES (\(ByteBuffer(bytes: hash)), \(requestID), \(Timestamp.micros(createdAt)))
            """)
    }

    func insertRequestToken(hash: Data, requestID: UUID, expiresAt: Date) async throws {
        try await run("DELETE FROM dsr_tokens WHERE request_id = \(requestID) AND used_at IS NULL")
        try await run(
            """
            INSERT INTO dsr_tokens (token_hash, request_id, expires_at)
            VALUES (\(ByteBuffer(bytes: hash)), \(requestID), \(Timestamp.micros(expiresAt)))
            """)
    }

    func requestToken(hash: Data) async throws -> RequestTokenRecord? {
        try await rows(
            """
            SELECT request_id, expires_at, used_at FROM dsr_tokens WHERE token_hash = \(ByteBuffer(bytes: hash))
            FOR UPDATE
            """
        ).first.map { row in
            let (request, expires, used) = try row.decode((UUID, Int64, Int64?).self)
            return RequestTokenRecord(
                requestID: request, expiresAt: Timestamp.date(micros: expires),
                usedAt: used.map(Timestamp.date(micros:)))
        }
    }

    func markRequestTokenUsed(hash: Data, at: Date) async throws {
        try await run(
            "UPDATE dsr_tokens SET used_at = \(Timestamp.micros(at)) WHERE token_hash = \(ByteBuffer(bytes: hash))")
    }

    func purgeSealedRows(finishedBefore: Date, now: Date) async throws -> [UUID] {
        let ids = try await rows(
            """
            UPDATE dsr_tasks SET sealed_rows = NULL, updated_at = \(Timestamp.micros(now))
            WHERE sealed_rows IS NOT NULL AND request_id IN (
                SELECT id FROM dsr_requests WHERE finished_at IS NOT NULL AND finished_at < \(Timestamp.micros(finishedBefore)))
            RETURNING request_id
            """
        ).map { try $0.decode(UUID.self) }
        return Array(Set(ids)).sorted { $0.uuidString < $1.uuidString }
    }

    func suppressions(since: Date) async throws -> [SuppressionRecord] {
        try await rows(
            """
            SELECT kind, blind_index, request_id, erased_at FROM suppressions
            WHERE erased_at >= \(Timestamp.micros(since)) ORDER BY erased_at
            """
        ).map { row in
            let (kind, index, request, erased) = try row.decode((String, Data, UUID, Int64).self)
            return SuppressionRecord(
                kind: try StoreError.stored(IdentityKind.self, kind, column: "suppressions.kind"), blindIndex: index,
                requestID: request, erasedAt: Timestamp.date(micros: erased))
        }
    }

    func insertSuppression(_ entry: SuppressionRecord) async throws {
        try await run(
            """
            INSERT INTO suppressions (kind, blind_index, request_id, erased_at)
            VALUES (\(entry.kind.rawValue), \(ByteBuffer(bytes: entry.blindIndex)), \(entry.requestID),
                \(Timestamp.micros(entry.erasedAt)))
            ON CONFLICT (kind, blind_index) DO UPDATE SET request_id = excluded.request_id, erased_at = excluded.erased_at
            """)
    }

    func deleteIdentities(subjectID: UUID) async throws -> Int {
        answers?.note(.subject(subjectID))
        let rows = try await rows(
            "WITH gone AS (DELETE FROM identities WHERE subject_id = \(subjectID) RETURNING 1) SELECT count(*)::int8 FROM gone"
        )
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }
}
