import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// Subjects and their identities, on SQLiteSession.
extension SQLiteSession {
    func subjectID(kind: IdentityKind, blindIndex: Data) async throws -> UUID? {
        try connection.query(
            "SELECT subject_id FROM identities WHERE kind = ? AND blind_index = ?",
            [.text(kind.rawValue), .blob(blindIndex)]
        ) { try $0.uuid(0) }.first
    }

    func suppressedIndexes(kind: IdentityKind, blindIndexes: [Data]) async throws -> Set<Data> {
        var found: Set<Data> = []
        for start in stride(from: 0, to: blindIndexes.count, by: 500) {
            let chunk = blindIndexes[start..<min(blindIndexes.count, start + 500)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for index in try connection.query(
                "SELECT blind_index FROM suppressions WHERE kind = ? AND blind_index IN (\(marks))",
                [.text(kind.rawValue)] + chunk.map { .blob($0) }, { $0.blob(0) })
            {
                found.insert(index)
            }
        }
        return found
    }

    func resolveSubject(_ id: UUID) async throws -> UUID? {
        var current = id
        // Merges form chains only through already-merged subjects; a few hops at most.
        for _ in 0..<16 {
            guard
                let row = try connection.query(
                    "SELECT merged_into FROM subjects WHERE id = ?", [.uuid(current)], { try $0.optionalUUID(0) }
                ).first
            else { return nil }
            guard let next = row else { return current }
            current = next
        }
        return nil
    }

    func identities(subjectID: UUID) async throws -> [IdentityRecord] {
        try connection.query(
            "SELECT id, subject_id, kind, blind_index, ciphertext, created_at FROM identities WHERE subject_id = ? ORDER BY created_at, id",
            [.uuid(subjectID)]
        ) { row in
            IdentityRecord(
                id: try row.uuid(0), subjectID: try row.uuid(1),
                kind: try StoreError.stored(IdentityKind.self, row.text(2), column: "identities.kind"),
                blindIndex: row.blob(3), ciphertext: row.blob(4), createdAt: row.time(5))
        }
    }

    func insertSubject(id: UUID, createdAt: Date) async throws {
        try connection.run("INSERT INTO subjects (id, created_at) VALUES (?, ?)", [.uuid(id), .time(createdAt)])
    }

    func insertIdentity(_ identity: IdentityRecord) async throws {
        answers?.noteIdentity(kind: identity.kind, blindIndex: identity.blindIndex)
        try connection.run(
            "INSERT INTO identities (id, subject_id, kind, blind_index, ciphertext, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .uuid(identity.id), .uuid(identity.subjectID), .text(identity.kind.rawValue),
                .blob(identity.blindIndex),
                .blob(identity.ciphertext), .time(identity.createdAt),
            ])
    }

    func reassignIdentity(id: UUID, to subjectID: UUID, ciphertext: Data) async throws {
        try connection.run(
            "UPDATE identities SET subject_id = ?, ciphertext = ? WHERE id = ?",
            [.uuid(subjectID), .blob(ciphertext), .uuid(id)])
    }

    func markSubjectMerged(_ source: UUID, into target: UUID, at: Date) async throws {
        answers?.note(.subject(source))
        answers?.note(.subject(target))
        try connection.run(
            "UPDATE subjects SET merged_into = ?, merged_at = ? WHERE id = ?",
            [.uuid(target), .time(at), .uuid(source)])
    }
}
