import Foundation
import StewardCore
import StewardPolicy
import Testing

/// Statutory clocks (issue 18 item 1), by hand-computed dates: month ends, leap years, weekends and
/// holidays, business days, extensions, time zones.
@Suite struct RequestDeadlineArithmetic {
    static let berlin = TimeZone(identifier: "Europe/Berlin")!
    static let losAngeles = TimeZone(identifier: "America/Los_Angeles")!

    static func day(_ text: String) -> CivilDate { CivilDate(parsing: text)! }
    static func instant(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    static let gdpr = Regime(
        key: "gdpr", name: "GDPR",
        calendar: DeadlineCalendar(
            zone: berlin, holidays: [day("2026-10-03"), day("2026-12-25"), day("2026-12-26")], rollsToWorkingDay: true),
        rules: [
            .access: RegimeRule(response: .months(1), extensionPeriod: .months(2)),
            .erasure: RegimeRule(response: .months(1), extensionPeriod: .months(2)),
        ])
    static let ccpa = Regime(
        key: "ccpa", name: "CCPA",
        calendar: DeadlineCalendar(
            zone: losAngeles, holidays: [day("2026-11-26"), day("2026-11-27"), day("2026-12-25")],
            rollsToWorkingDay: false),
        rules: [
            .access: RegimeRule(response: .days(45), extensionPeriod: .days(45), acknowledgement: .businessDays(10)),
            .optOutSale: RegimeRule(response: .businessDays(15), verificationRequired: false),
        ])

    @Test func civilDatesCountLikeACalendar() {
        #expect(Self.day("2026-01-31").adding(months: 1) == Self.day("2026-02-28"))
        #expect(Self.day("2028-01-31").adding(months: 1) == Self.day("2028-02-29"), "leap year")
        #expect(Self.day("2100-01-31").adding(months: 1) == Self.day("2100-02-28"), "no leap day in 2100")
        #expect(Self.day("2000-01-31").adding(months: 1) == Self.day("2000-02-29"), "but in 2000")
        #expect(Self.day("2026-03-31").adding(months: 1) == Self.day("2026-04-30"))
        #expect(Self.day("2026-11-30").adding(months: 3) == Self.day("2027-02-28"), "across the year")
        #expect(Self.day("2026-12-31").adding(days: 1) == Self.day("2027-01-01"))
        #expect(Self.day("2026-02-28").adding(days: 1) == Self.day("2026-03-01"))
        #expect(Self.day("1970-01-01").weekday == 4, "a Thursday")
        #expect(Self.day("2026-02-28").weekday == 6 && Self.day("2026-02-28").isWeekend, "a Saturday")
        #expect(Self.day("2026-03-02").weekday == 1, "a Monday")
        #expect(CivilDate(parsing: "2026-02-29") == nil && CivilDate(parsing: "2026-2-01") == nil)
        #expect(CivilDate(parsing: "2028-02-29") != nil)
        for number in [-1, 0, 20_000, 2_932_896] {
            #expect(CivilDate(dayNumber: number).dayNumber == number)
        }
    }

    @Test func gdprOneMonthEndsOnTheSameDayOrTheMonthsLastAndRollsToAWorkingDay() throws {
        // 31 January 2026 + one month: no 31 February, so 28 February — a Saturday: Monday 2 March.
        let late = try #require(Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-01-31T10:00:00Z")))
        #expect(late.receivedOn == Self.day("2026-01-31"))
        #expect(late.dueOn == Self.day("2026-03-02"))
        // The deadline passes at the end of that day in Berlin (CET, UTC+1).
        #expect(late.due == Self.instant("2026-03-02T23:00:00Z"))
        // Without the roll to a working day, the month's last day.
        var strict = Self.gdpr
        strict.calendar.rollsToWorkingDay = false
        #expect(
            strict.deadlines(for: .access, receivedAt: Self.instant("2026-01-31T10:00:00Z"))?.dueOn
                == Self.day("2026-02-28"))
        // Leap year: 31 January 2028 + one month is Tuesday 29 February.
        #expect(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2028-01-31T12:00:00Z"))?.dueOn
                == Self.day("2028-02-29"))
        // The receipt day counts (the conservative reading): 3 September → 3 October, here a
        // Saturday and a holiday → Monday 5 October.
        #expect(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-09-03T09:00:00Z"))?.dueOn
                == Self.day("2026-10-05"))
        // Christmas: 25 November + one month is Friday 25 December, a holiday; the 26th is one and a
        // Saturday; the 27th a Sunday: Monday 28 December.
        #expect(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-11-25T09:00:00Z"))?.dueOn
                == Self.day("2026-12-28"))
        // The receipt day is Berlin's: 23:30 UTC on 30 January is already 31 January there.
        #expect(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-01-30T23:30:00Z"))?.receivedOn
                == Self.day("2026-01-31"))
        // Summer time: the deadline of 15 July passes at 22:00 UTC (CEST, UTC+2).
        #expect(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-06-15T08:00:00Z"))?.due
                == Self.instant("2026-07-15T22:00:00Z"))
        // A type the regime does not grant has no deadline.
        #expect(Self.gdpr.deadlines(for: .optOutSale, receivedAt: Date()) == nil)
    }

    @Test func ccpaCountsCalendarAndBusinessDays() throws {
        // Friday 20 November 2026 in Los Angeles.
        let received = Self.instant("2026-11-20T18:00:00Z")
        let access = try #require(Self.ccpa.deadlines(for: .access, receivedAt: received))
        #expect(access.dueOn == Self.day("2027-01-04"), "45 calendar days, no roll")
        // Ten business days, Thanksgiving and the day after skipped: 23, 24, 25, 30 Nov, 1–4, 7, 8 Dec.
        #expect(access.acknowledgeOn == Self.day("2026-12-08"))
        #expect(access.acknowledgeBy == Self.instant("2026-12-09T08:00:00Z"), "midnight in Los Angeles (PST)")
        // Opt-out of sale: 15 business days.
        #expect(Self.ccpa.deadlines(for: .optOutSale, receivedAt: received)?.dueOn == Self.day("2026-12-15"))
        // A receipt late on Friday evening in Los Angeles is Saturday in UTC, still Friday there.
        #expect(
            Self.ccpa.deadlines(for: .access, receivedAt: Self.instant("2026-11-21T06:30:00Z"))?.receivedOn
                == Self.day("2026-11-20"))
    }

    @Test func extensionsAreCountedFromReceiptOnceWithAReasonBeforeTheDeadline() throws {
        // GDPR: received Thursday 15 January 2026; due Sunday 15 February → Monday 16 February.
        let received = Self.instant("2026-01-15T10:00:00Z")
        let deadlines = try #require(Self.gdpr.deadlines(for: .erasure, receivedAt: received))
        #expect(deadlines.dueOn == Self.day("2026-02-16"))
        let now = Self.instant("2026-02-10T10:00:00Z")
        let extended = try Self.gdpr.extend(deadlines, type: .erasure, reason: "twelve systems to search", now: now)
        // Three months from receipt (not two months from the first deadline): Wednesday 15 April.
        #expect(extended.dueOn == Self.day("2026-04-15"))
        #expect(extended.extendedOn == Self.day("2026-02-10") && extended.extensionReason == "twelve systems to search")
        #expect(throws: StewardError.self) {
            try Self.gdpr.extend(extended, type: .erasure, reason: "again", now: now)
        }
        #expect {
            try Self.gdpr.extend(deadlines, type: .erasure, reason: "  ", now: now)
        } throws: { ($0 as? StewardError)?.code == .requestExtensionReasonMissing }
        #expect {
            try Self.gdpr.extend(deadlines, type: .erasure, reason: "late", now: deadlines.due)
        } throws: { ($0 as? StewardError)?.code == .requestExtensionTooLate }
        #expect {
            try Self.ccpa.extend(
                try #require(Self.ccpa.deadlines(for: .optOutSale, receivedAt: received)), type: .optOutSale,
                reason: "x", now: received)
        } throws: { ($0 as? StewardError)?.code == .requestExtensionNotAllowed }
        // CCPA: 45 + 45 = 90 days from receipt.
        let ccpa = try #require(Self.ccpa.deadlines(for: .access, receivedAt: Self.instant("2026-11-20T18:00:00Z")))
        let longer = try Self.ccpa.extend(
            ccpa, type: .access, reason: "complex", now: Self.instant("2026-12-01T00:00:00Z"))
        #expect(longer.dueOn == Self.day("2027-02-18"))
    }

    @Test func standingIsOnTimeDueSoonOrOverdue() throws {
        let deadlines = try #require(
            Self.gdpr.deadlines(for: .access, receivedAt: Self.instant("2026-06-15T08:00:00Z")))
        #expect(Self.gdpr.standing(of: deadlines, now: Self.instant("2026-06-20T00:00:00Z")) == .onTime)
        #expect(Self.gdpr.standing(of: deadlines, now: Self.instant("2026-07-10T00:00:00Z")) == .dueSoon)
        #expect(Self.gdpr.standing(of: deadlines, now: deadlines.due.addingTimeInterval(-1)) == .dueSoon)
        #expect(Self.gdpr.standing(of: deadlines, now: deadlines.due) == .overdue)
    }

    @Test func periodsParse() {
        #expect(StatutoryPeriod(parsing: "1 month") == .months(1))
        #expect(StatutoryPeriod(parsing: "45 days") == .days(45))
        #expect(StatutoryPeriod(parsing: "10 business days") == .businessDays(10))
        #expect(StatutoryPeriod(parsing: "0 days") == nil && StatutoryPeriod(parsing: "a month") == nil)
        #expect(StatutoryPeriod(parsing: "2 fortnights") == nil)
    }
}

/// The lifecycle (issue 18 item 2): every status × event, written out by hand.
@Suite struct RequestLifecycle {
    @Test func everyStatusAndEvent() {
        let events: [RequestEvent] = [
            .verify(.token), .approve, .deny(.unverifiable), .cancel, .start, .complete, .completePartially, .fail,
            .retry,
        ]
        // status → event name → next status, for the request type that needs verification.
        let allowed: [RequestStatus: [String: RequestStatus]] = [
            .received: ["verify": .verified, "deny": .denied, "cancel": .cancelled],
            .verified: ["approve": .approved, "deny": .denied, "cancel": .cancelled],
            .approved: ["start": .executing, "cancel": .cancelled],
            .executing: ["complete": .completed, "complete_partially": .partiallyCompleted, "fail": .failed],
            .failed: ["retry": .executing],
            .completed: [:], .partiallyCompleted: [:], .denied: [:], .cancelled: [:],
        ]
        #expect(Set(allowed.keys) == Set(RequestStatus.allCases))
        for status in RequestStatus.allCases {
            for event in events {
                #expect(
                    status.after(event, verificationRequired: true) == allowed[status]?[event.name],
                    "\(status) + \(event.name)")
            }
        }
        // Without verification (CCPA opt-out), approval may come straight after receipt.
        #expect(RequestStatus.received.after(.approve, verificationRequired: false) == .approved)
        #expect(RequestStatus.received.after(.approve, verificationRequired: true) == nil)
        #expect(
            RequestStatus.allCases.filter(\.isTerminal) == [
                .completed, .partiallyCompleted, .denied, .cancelled, .failed,
            ])
    }
}

/// `requests.yaml` (issue 18 item 1): the shipped regimes load with their clocks; broken files name
/// file, line, key path and reason.
@Suite struct RequestRegimesFile {
    @Test func theShippedRegimesLoad() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Policies").path
        let regimes = try RequestsLoader.load(directory: directory)
        #expect(regimes.map(\.key) == ["gdpr", "ccpa"])
        let gdpr = try #require(regimes.first)
        #expect(gdpr.calendar.zone.identifier == "Europe/Berlin" && gdpr.calendar.rollsToWorkingDay)
        #expect(gdpr.rules[.erasure] == RegimeRule(response: .months(1), extensionPeriod: .months(2)))
        #expect(gdpr.rules[.optOutSale] == nil)
        let ccpa = try #require(regimes.last)
        #expect(
            ccpa.rules[.access]
                == RegimeRule(response: .days(45), extensionPeriod: .days(45), acknowledgement: .businessDays(10)))
        #expect(
            ccpa.rules[.optOutSale]
                == RegimeRule(response: .businessDays(15), verificationRequired: false, automaticApproval: true))
        #expect(ccpa.rules[.limitSensitive]?.verificationRequired == false)
        #expect(ccpa.calendar.holidays.contains(CivilDate(parsing: "2026-11-26")!))
    }

    /// The policy loads its regimes with the rest, refuses a broken file with the rest's issues, and
    /// the digest covers it.
    @Test func thePolicyLoadsAndDigestsIt() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Policies")
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("regimes-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: shipped, to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        let digest: (Data) -> String = { data in "\(data.reduce(0) { ($0 &* 31) &+ Int($1) })" }
        let before = try PolicyLoader.load(directory: copy.path, digest: digest)
        #expect(before.regimes.map(\.key) == ["gdpr", "ccpa"])
        let file = copy.appendingPathComponent("requests.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "response: 45 days", with: "response: 45 dayz").write(
            to: file, atomically: true, encoding: .utf8)
        #expect {
            try PolicyLoader.load(directory: copy.path, digest: digest)
        } throws: { error in
            (error as? PolicyError)?.issues.map(\.keyPath) == ["regimes[1].default.response"]
        }
        try text.replacingOccurrences(
            of: "due_soon: 7 days\n    default:\n      response: 45",
            with: "due_soon: 5 days\n    default:\n      response: 45"
        )
        .write(to: file, atomically: true, encoding: .utf8)
        #expect(try PolicyLoader.load(directory: copy.path, digest: digest).digest != before.digest)
    }

    @Test func brokenFilesNameTheirPlace() {
        let text = """
            version: 1
            regimes:
              - key: gdpr
                time_zone: Europe/Atlantis
                holidays: [2026-02-30]
                default:
                  response: one month
                types: [access, deletion]
              - key: gdpr
                time_zone: UTC
                types: [access]
              - key: ccpa
                time_zone: UTC
                types: [access]
            """
        #expect {
            try RequestsLoader.parse(Data(text.utf8), file: "requests.yaml")
        } throws: { error in
            (error as? PolicyError)?.issues.map(\.description) == [
                "requests.yaml:4: regimes[0].time_zone: 'Europe/Atlantis' is not an IANA time zone, e.g. Europe/Berlin",
                "requests.yaml:5: regimes[0].holidays[0]: expected a date YYYY-MM-DD",
                "requests.yaml:7: regimes[0].default.response: expected a period such as '1 month', '45 days' or '10 business days'",
                "requests.yaml:8: regimes[0].types[1]: unknown value 'deletion' (expected one of: access, portability, erasure, rectification, restriction, objection, opt_out_sale, limit_sensitive)",
                "requests.yaml:9: regimes[1].key: duplicate regime 'gdpr'",
                "requests.yaml:12: regimes[2].default: is required: the response period of the types",
            ]
        }
    }

    /// A holiday list must reach as far as a request received today can fall due: past it, deadlines
    /// count no holidays. The regime says which year is missing, and when.
    @Test func aHolidayListThatEndsTooSoonIsFound() throws {
        func day(_ text: String) -> CivilDate { CivilDate(parsing: text)! }
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let regime = Regime(
            key: "gdpr", name: "GDPR",
            calendar: DeadlineCalendar(
                zone: berlin, holidays: [day("2026-10-03"), day("2026-12-25")], rollsToWorkingDay: true),
            rules: [.access: RegimeRule(response: .months(1), extensionPeriod: .months(2))])
        // Three months from receipt, extension included: from 1 June, 1 September, inside 2026.
        #expect(regime.horizon(receivedOn: day("2026-06-01")) == day("2026-09-01"))
        #expect(regime.uncoveredYear(receivedOn: day("2026-06-01")) == nil)
        // From 3 December: 3 March 2027, which the list does not reach.
        #expect(regime.horizon(receivedOn: day("2026-12-03")) == day("2027-03-03"))
        #expect(regime.uncoveredYear(receivedOn: day("2026-12-03")) == 2027)
        // A regime with no holidays listed has nothing to run out of.
        var bare = regime
        bare.calendar.holidays = []
        #expect(bare.uncoveredYear(receivedOn: day("2026-12-03")) == nil)
    }
}
