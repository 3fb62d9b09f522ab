import Foundation
import Logging

/// One line per event on standard error: JSON objects (`--json-logs`: time, level, label, message and
/// metadata with dotted keys) or text (`time level label: [key=value …] message`).
///
/// Metadata is kept as given and rendered only when a line is written. Hummingbird sets the request
/// id on every request's logger; swift-log's `StreamLogHandler` re-renders all of its metadata on
/// each such set, which was about 2% of a consent check's CPU in the default text format.
struct LineLogHandler: LogHandler {
    enum Format { case json, text }

    let label: String
    let format: Format
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Messages of libraries that say nothing an operator can act on. PostgresNIO warns when a
    /// connection is asked for before `run()` has marked its pool running; a command starts the pool
    /// and its first query together, and the query simply waits for the pool.
    static let unactionable: Set<String> = [
        "Trying to lease connection from `PostgresClient`, but `PostgresClient.run()` hasn't been called yet."
    ]

    func log(event: LogEvent) {
        if event.level == .warning, Self.unactionable.contains(event.message.description) { return }
        let fields = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        let time = Date().formatted(.iso8601)
        switch format {
        case .json:
            var object: [String: String] = [
                "time": time, "level": event.level.rawValue, "label": label, "message": event.message.description,
            ]
            for (key, value) in fields { object[key] = value.description }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
                return
            }
            FileHandle.standardError.write(data + Data("\n".utf8))
        case .text:
            let rendered = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let line = "\(time) \(event.level) \(label): \(rendered.isEmpty ? "" : "[\(rendered)] ")\(event.message)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
