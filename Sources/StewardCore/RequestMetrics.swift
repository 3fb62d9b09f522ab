public import Foundation

/// The metrics CCPA regulations §7102 ask of a business handling the personal information of ten
/// million consumers or more, for one calendar year: per request kind (delete, correct, know,
/// opt-out of sale/sharing, limit), how many were received, complied with in whole or in part, and
/// denied (by reason), and the median and mean number of days to respond substantively. Computed
/// from the stored requests, which keep their statuses, reasons and times — never an identity.
public struct RequestMetrics: Sendable, Hashable, Codable {
    public struct Line: Sendable, Hashable, Codable {
        /// `delete`, `correct`, `know`, `opt_out`, `limit`.
        public var kind: String
        /// The request types counted under it.
        public var types: [String]
        public var received: Int
        /// Completed or partially completed.
        public var compliedInWholeOrPart: Int
        public var denied: Int
        public var deniedByReason: [String: Int]
        /// Received that year and not answered yet (open), or withdrawn (cancelled), or failed.
        public var open: Int
        public var cancelled: Int
        /// Days from receipt to the response (completion or denial), in the regime's calendar:
        /// nil when none was answered.
        public var medianDays: Double?
        public var meanDays: Double?
    }

    public var regime: String
    public var year: Int
    public var lines: [Line]

    /// The kinds §7102 names, and the request types behind them.
    public static let kinds: [(kind: String, types: [RequestType])] = [
        ("delete", [.erasure]), ("correct", [.rectification]), ("know", [.access, .portability]),
        ("opt_out", [.optOutSale]), ("limit", [.limitSensitive]),
    ]

    /// The metrics of the requests `regime` received in `year` (a calendar year in `zone`).
    public init(requests: [DataSubjectRequestRecord], regime: String, year: Int, zone: TimeZone) {
        self.regime = regime
        self.year = year
        let ofYear = requests.filter { $0.regime == regime && CivilDate($0.receivedAt, in: zone).year == year }
        lines = Self.kinds.map { kind, types in
            let chosen = ofYear.filter { types.contains($0.type) }
            var line = Line(
                kind: kind, types: types.map(\.rawValue), received: chosen.count, compliedInWholeOrPart: 0, denied: 0,
                deniedByReason: [:], open: 0, cancelled: 0)
            var days: [Int] = []
            for request in chosen {
                switch request.status {
                case .completed, .partiallyCompleted: line.compliedInWholeOrPart += 1
                case .denied:
                    line.denied += 1
                    line.deniedByReason[request.denial?.rawValue ?? DenialReason.other.rawValue, default: 0] += 1
                case .cancelled: line.cancelled += 1
                default: line.open += 1
                }
                if [.completed, .partiallyCompleted, .denied].contains(request.status),
                    let finished = request.finishedAt
                {
                    days.append(
                        CivilDate(finished, in: zone).dayNumber - CivilDate(request.receivedAt, in: zone).dayNumber)
                }
            }
            if !days.isEmpty {
                let sorted = days.sorted()
                let middle = sorted.count / 2
                line.medianDays =
                    sorted.count % 2 == 1 ? Double(sorted[middle]) : Double(sorted[middle - 1] + sorted[middle]) / 2
                line.meanDays = (Double(sorted.reduce(0, +)) / Double(sorted.count) * 10).rounded() / 10
            }
            return line
        }
    }

    /// One line per kind: `kind,received,complied_in_whole_or_part,denied,…`.
    public var csv: String {
        var text = "kind,received,complied_in_whole_or_part,denied,"
        text += DenialReason.allCases.map { "denied_\($0.rawValue)" }.joined(separator: ",")
        text += ",open,cancelled,median_days,mean_days\r\n"
        for line in lines {
            var cells = [line.kind, "\(line.received)", "\(line.compliedInWholeOrPart)", "\(line.denied)"]
            cells += DenialReason.allCases.map { "\(line.deniedByReason[$0.rawValue] ?? 0)" }
            cells += ["\(line.open)", "\(line.cancelled)"]
            cells += [line.medianDays.map { "\($0)" } ?? "", line.meanDays.map { "\($0)" } ?? ""]
            text += cells.joined(separator: ",") + "\r\n"
        }
        return text
    }
}
