public import Foundation

/// A statutory period: calendar months (GDPR's "one month"), calendar days (CCPA's 45 days) or
/// business days (CCPA's 10-day acknowledgement, 15-day opt-out).
public enum StatutoryPeriod: Sendable, Hashable, CustomStringConvertible {
    case months(Int)
    case days(Int)
    case businessDays(Int)

    /// `1 month`, `2 months`, `45 days`, `10 business days`.
    public init?(parsing text: String) {
        let words = text.split(separator: " ").map { $0.lowercased() }
        guard let amount = words.first.flatMap({ Int($0) }), (1...1_000).contains(amount) else { return nil }
        switch Array(words.dropFirst()) {
        case ["month"], ["months"]: self = .months(amount)
        case ["day"], ["days"]: self = .days(amount)
        case ["business", "day"], ["business", "days"]: self = .businessDays(amount)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .months(let n): "\(n) month\(n == 1 ? "" : "s")"
        case .days(let n): "\(n) day\(n == 1 ? "" : "s")"
        case .businessDays(let n): "\(n) business day\(n == 1 ? "" : "s")"
        }
    }

    /// This period followed by `other`, counted from the same start when both are in the same unit
    /// (GDPR: one month extended by two is three months from receipt); nil otherwise.
    public func plus(_ other: StatutoryPeriod) -> StatutoryPeriod? {
        switch (self, other) {
        case (.months(let a), .months(let b)): .months(a + b)
        case (.days(let a), .days(let b)): .days(a + b)
        case (.businessDays(let a), .businessDays(let b)): .businessDays(a + b)
        default: nil
        }
    }
}

/// The controller's calendar for statutory clocks: its time zone (a day ends at midnight there),
/// the public holidays that move a deadline, and whether a period ending on a weekend or holiday
/// runs to the next working day (Reg. 1182/71 Art. 3(4), for GDPR).
public struct DeadlineCalendar: Sendable, Hashable {
    public var zone: TimeZone
    public var holidays: Set<CivilDate>
    public var rollsToWorkingDay: Bool

    public init(zone: TimeZone = TimeZone(identifier: "UTC")!, holidays: Set<CivilDate> = [], rollsToWorkingDay: Bool) {
        self.zone = zone
        self.holidays = holidays
        self.rollsToWorkingDay = rollsToWorkingDay
    }

    public func isWorkingDay(_ date: CivilDate) -> Bool { !date.isWeekend && !holidays.contains(date) }

    /// The next working day on or after `date`.
    public func workingDay(onOrAfter date: CivilDate) -> CivilDate {
        var day = date
        while !isWorkingDay(day) { day = day.adding(days: 1) }
        return day
    }

    /// The last day of `period` for a request received on `receipt`, by the conservative reading:
    /// the day of receipt is the day the period runs from, so one month from 3 September ends on
    /// 3 October (not 4 October), and from 31 January on the last day of February.
    /// - months: the same-numbered day, or the month's last day when it has none;
    /// - days: `receipt` + n;
    /// - business days: the n-th working day after `receipt` (weekends and holidays skipped).
    /// Months and days then run to the next working day when the calendar says so.
    public func lastDay(of period: StatutoryPeriod, receivedOn receipt: CivilDate) -> CivilDate {
        switch period {
        case .months(let n):
            let day = receipt.adding(months: n)
            return rollsToWorkingDay ? workingDay(onOrAfter: day) : day
        case .days(let n):
            let day = receipt.adding(days: n)
            return rollsToWorkingDay ? workingDay(onOrAfter: day) : day
        case .businessDays(let n):
            var day = receipt
            var counted = 0
            while counted < n {
                day = day.adding(days: 1)
                if isWorkingDay(day) { counted += 1 }
            }
            return day
        }
    }

    /// The instant a deadline whose last day is `day` passes: the end of that day in the zone.
    public func end(of day: CivilDate) -> Date { day.adding(days: 1).start(in: zone) }
}

/// Where a request stands against its deadline.
public enum DeadlineStanding: String, Sendable, Hashable, Codable, CaseIterable {
    case onTime = "on_time"
    /// Due within the regime's warning window.
    case dueSoon = "due_soon"
    case overdue

    public static func of(due: Date, now: Date, warning: TimeInterval) -> DeadlineStanding {
        if now >= due { return .overdue }
        return due.timeIntervalSince(now) <= warning ? .dueSoon : .onTime
    }
}
