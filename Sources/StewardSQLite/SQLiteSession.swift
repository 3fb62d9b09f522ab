import Foundation
import SQLiteDriver
import StewardCore
import StewardServices

/// The store operations over one leased connection (a reader, or the writer inside a transaction),
/// one file per role: `SQLiteSession+Subjects.swift`, `+ConsentLedger`, `+APIKeys`, `+Audit`,
/// `+Settings`, `+Jobs`.
struct SQLiteSession: StoreTransaction, @unchecked Sendable {
    let connection: SQLiteConnection
    /// A write's answer changes (ADR 0013); nil for read sessions.
    var answers: AnswerChangeLog? = nil

    /// Appends the write's answer changes to the feed, at the next position (the feed row's lock,
    /// held to the commit, orders positions as commits).
    func publishAnswerChanges() throws {
        guard let answers, !answers.isEmpty else { return }
        try publish(answers.published)
    }

    /// Appends changes to the feed at the next position (nothing when there are none).
    func publish(_ changes: [AnswerChange]) throws {
        guard !changes.isEmpty else { return }
        guard
            let position = try connection.query(
                "UPDATE answer_feed SET position = position + 1 WHERE id = 1 RETURNING position", [], { $0.int(0) }
            ).first
        else { throw StoreError.integrity("answer_feed has no row") }
        let now = Timestamp.micros(Date())
        for start in stride(from: 0, to: changes.count, by: 200) {
            let chunk = changes[start..<min(changes.count, start + 200)]
            var values: [SQLValue] = []
            for change in chunk {
                values.append(.int(position))
                switch change {
                case .subject(let id): values += [.uuid(id), .null, .null]
                case .identity(let kind, let tag): values += [.null, .text(kind.rawValue), .int(tag)]
                case .everything: values += [.null, .null, .null]
                }
                values.append(.int(now))
            }
            try connection.run(
                "INSERT INTO answer_changes (position, subject_id, identity_kind, identity_tag, recorded_at) VALUES "
                    + Array(repeating: "(?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", "), values)
        }
    }
}
