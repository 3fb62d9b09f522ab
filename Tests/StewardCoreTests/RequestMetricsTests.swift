import Foundation
import StewardCore
import Testing

/// CCPA §7102 metrics (issue 18): counts per kind and the days to respond, in the regime's calendar.
@Suite struct RequestMetricsReport {
    static let zone = TimeZone(identifier: "America/Los_Angeles")!

    /// A request of `type` received at `received` (Los Angeles wall time), answered `days` later.
    static func request(
        _ type: RequestType, _ status: RequestStatus, received: String, days: Int? = nil, denial: DenialReason? = nil,
        regime: String = "ccpa"
    ) throws -> DataSubjectRequestRecord {
        let formatter = ISO8601DateFormatter()
        let at = try #require(formatter.date(from: received))
        let deadlines = try #require(
            Regime(
                key: regime, name: regime,
                calendar: DeadlineCalendar(zone: zone, holidays: [], rollsToWorkingDay: false),
                rules: [type: RegimeRule(response: .days(45))]
            ).deadlines(for: type, receivedAt: at))
        return DataSubjectRequestRecord(
            id: UUID(), type: type, regime: regime, status: status, subjectID: UUID(), receivedAt: at,
            deadlines: deadlines, denial: denial, submittedBy: "test", createdAt: at, updatedAt: at,
            finishedAt: days.map { at.addingTimeInterval(Double($0) * 86_400) })
    }

    @Test func countsPerKindAndDaysToRespondForOneCalendarYear() throws {
        let requests = [
            try Self.request(.erasure, .completed, received: "2026-03-02T10:00:00-08:00", days: 10),
            try Self.request(.erasure, .partiallyCompleted, received: "2026-05-02T10:00:00-07:00", days: 20),
            try Self.request(.erasure, .denied, received: "2026-06-02T10:00:00-07:00", days: 3, denial: .unverifiable),
            try Self.request(.erasure, .executing, received: "2026-12-01T10:00:00-08:00"),
            try Self.request(.access, .completed, received: "2026-02-01T10:00:00-08:00", days: 7),
            try Self.request(.portability, .completed, received: "2026-02-03T10:00:00-08:00", days: 9),
            try Self.request(.optOutSale, .completed, received: "2026-07-04T10:00:00-07:00", days: 0),
            try Self.request(.optOutSale, .cancelled, received: "2026-07-05T10:00:00-07:00"),
            // Not 2026 in Los Angeles (still 2025 there), another year, another regime: not counted.
            try Self.request(.erasure, .completed, received: "2025-12-31T23:30:00-08:00", days: 1),
            try Self.request(.erasure, .completed, received: "2027-01-02T10:00:00-08:00", days: 1),
            try Self.request(.erasure, .completed, received: "2026-03-02T10:00:00-08:00", days: 1, regime: "gdpr"),
        ]
        let metrics = RequestMetrics(requests: requests, regime: "ccpa", year: 2026, zone: Self.zone)
        let lines = Dictionary(uniqueKeysWithValues: metrics.lines.map { ($0.kind, $0) })
        #expect(metrics.lines.map(\.kind) == ["delete", "correct", "know", "opt_out", "limit"])
        let delete = try #require(lines["delete"])
        #expect(delete.received == 4 && delete.compliedInWholeOrPart == 2 && delete.denied == 1 && delete.open == 1)
        #expect(delete.deniedByReason == ["unverifiable": 1])
        #expect(delete.medianDays == 10 && delete.meanDays == 11, "10, 20 and 3 days: median 10, mean 11")
        #expect(lines["know"]?.received == 2 && lines["know"]?.medianDays == 8, "access and portability")
        #expect(lines["opt_out"]?.cancelled == 1 && lines["opt_out"]?.meanDays == 0)
        #expect(lines["correct"]?.received == 0 && lines["correct"]?.medianDays == nil)
        #expect(
            metrics.csv.split(separator: "\r\n").first
                == "kind,received,complied_in_whole_or_part,denied,denied_unverifiable,denied_not_made_by_subject,denied_exempt,denied_manifestly_unfounded,denied_other,open,cancelled,median_days,mean_days"
        )
        #expect(metrics.csv.contains("\r\ndelete,4,2,1,1,0,0,0,0,1,0,10.0,11.0\r\n"))
    }
}
