import Foundation
import Logging
import NIOCore
import PostgresNIO
import StewardCore
import StewardServices

/// Subjects and their identities, on PostgresSession.
extension PostgresSession {
    func subjectID(kind: IdentityKind, blindIndex: Data) async throws -> UUID? {
        let index = ByteBuffer(bytes: blindIndex)
        return try await rows(
            "SELECT subject_id FROM identities WHERE kind = \(kind.rawValue) AND blind_index = \(index)"
        )
        .first.map { try $0.decode(UUID.self) }
    }

    func subjectIDs(kind: IdentityKind, blindIndexes: [Data]) async throws -> [Data: UUID]? {
        var found: [Data: UUID] = [:]
        let rows = try await rows(
            "SELECT blind_index, subject_id FROM identities WHERE kind = $1 AND blind_index IN",
            matching: blindIndexes.map { ByteBuffer(bytes: $0) }, after: kind.rawValue)
        for row in rows {
            let (index, subject) = try row.decode((Data, UUID).self)
            found[index] = subject
        }
        return found
    }

    func suppressedIndexes(kind: IdentityKind, blindIndexes: [Data]) async throws -> Set<Data> {
        guard !blindIndexes.isEmpty else { return [] }
        return Set(
            try await rows(
                "SELECT blind_index FROM suppressions WHERE kind = $1 AND blind_index IN",
                matching: blindIndexes.map { ByteBuffer(bytes: $0) }, after: kind.rawValue
            ).map { try $0.decode(Data.self) })
    }

    func resolveSubject(_ id: UUID) async throws -> UUID? {
        var current = id
        for _ in 0..<16 {
            guard let row = try await rows("SELECT merged_into FROM subjects WHERE id = \(current)").first else {
                return nil
            }
            guard let next = try row.decode(UUID?.self) else { return current }
            current = next
        }
        return nil
    }

    func identities(subjectID: UUID) async throws -> [IdentityRecord] {
        try await rows(
            "SELECT id, subject_id, kind, blind_index, ciphertext, created_at FROM identities WHERE subject_id = \(subjectID) ORDER BY created_at, id"
        ).map { row in
            let (id, subject, kind, index, ciphertext, created) = try row.decode(
                (UUID, UUID, String, Data, Data, Int64).self)
            return IdentityRecord(
                id: id, subjectID: subject,
                kind: try StoreError.stored(IdentityKind.self, kind, column: "identities.kind"), blindIndex: index,
                ciphertext: ciphertext, createdAt: Timestamp.date(micros: created))
        }
    }

    func insertSubject(id: UUID, createdAt: Date) async throws {
        try writes().subjects.append((id, Timestamp.micros(createdAt)))
    }

    func insertIdentity(_ identity: IdentityRecord) async throws {
        answers?.noteIdentity(kind: identity.kind, blindIndex: identity.blindIndex)
        try writes().identities.append(identity)
    }

    func reassignIdentity(id: UUID, to subjectID: UUID, ciphertext: Data) async throws {
        let buffer = ByteBuffer(bytes: ciphertext)
        try await run("UPDATE identities SET subject_id = \(subjectID), ciphertext = \(buffer) WHERE id = \(id)")
    }

    func markSubjectMerged(_ source: UUID, into target: UUID, at: Date) async throws {
        answers?.note(.subject(source))
        answers?.note(.subject(target))
        try await run(
            "UPDATE subjects SET merged_into = \(target), merged_at = \(Timestamp.micros(at)) WHERE id = \(source)")
    }
}
