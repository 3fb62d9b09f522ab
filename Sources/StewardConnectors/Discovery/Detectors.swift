import Foundation

/// Value detectors for discovery: each looks at one sampled value and says whether it has the
/// shape of a kind of personal data. Checks that can be checked are (Luhn for card numbers, mod 97
/// for IBANs, the issued ranges of US social security numbers, the valid prefixes of UK national
/// insurance numbers), so that numbers that only look alike — order numbers, tracking ids — do not
/// pass. A detector never keeps the value.
public enum Detector: String, CaseIterable, Sendable, Hashable {
    case email
    /// A phone number written as one: `+` and 8–15 digits, or grouped with separators.
    case phone
    /// 7 to 15 digits and nothing else: a phone number only when the column's name says so.
    case digits
    case ipAddress = "ip_address"
    case paymentCard = "payment_card"
    case iban
    /// `ddd-dd-dddd` in the ranges the SSA issues.
    case ssn
    /// Nine digits in those ranges (an SSN only when the name says so).
    case ssnDigits = "ssn_digits"
    /// A UK national insurance number.
    case nino
    case postcode
    case streetAddress = "street_address"
    /// A first name from the dictionary.
    case firstName = "first_name"
    /// A last name from the dictionary.
    case lastName = "last_name"
    /// "First Last" with a first name from the dictionary.
    case fullName = "full_name"
    /// One to three capitalised alphabetic words: a name or a place, when the column's name says which.
    case properNoun = "proper_noun"
    /// A calendar date without a time, in the range of living people's births.
    case birthDate = "birth_date"
    /// A four-digit year in the range of living people's births.
    case birthYear = "birth_year"
    /// A login handle: 3–32 letters, digits, `.`, `_` or `-`, with at least one letter.
    case handle
    /// A "latitude, longitude" pair.
    case coordinates
    /// One coordinate: a decimal number in −180…180 with at least three decimals.
    case coordinate
    case country
    case gender
    /// Free text: at least 20 characters and four words.
    case freeText = "free_text"
    /// Free text that holds an email address, a phone number or a name.
    case personalText = "personal_text"

    /// The detectors `value` matches.
    public static func matches(_ value: String) -> Set<Detector> {
        let value = String(trimmed(value[...], isTrimmed: { $0 == " " || $0 == "\t" }))
        guard !value.isEmpty, value.utf8.count <= 4_096 else { return [] }
        var found: Set<Detector> = []
        let bytes = Array(value.utf8)
        if isEmail(bytes) { found.insert(.email) }
        if isIPAddress(value) { found.insert(.ipAddress) }
        let digits = bytes.filter { $0 >= 48 && $0 <= 57 }
        let onlyDigits = digits.count == bytes.count
        let separatorsOnly = bytes.allSatisfy { ($0 >= 48 && $0 <= 57) || $0 == 32 || $0 == 45 }
        if separatorsOnly, (13...19).contains(digits.count), isPaymentCard(digits) { found.insert(.paymentCard) }
        if isPhone(bytes, digits: digits) { found.insert(.phone) }
        if onlyDigits, (7...15).contains(digits.count) { found.insert(.digits) }
        if isIBAN(bytes) { found.insert(.iban) }
        if bytes.count == 11, bytes[3] == 45, bytes[6] == 45, digits.count == 9, isSSN(digits) { found.insert(.ssn) }
        if onlyDigits, digits.count == 9, isSSN(digits) { found.insert(.ssnDigits) }
        if isNINO(bytes) { found.insert(.nino) }
        if isPostcode(value) { found.insert(.postcode) }
        if isStreetAddress(value) { found.insert(.streetAddress) }
        if isBirthDate(bytes) { found.insert(.birthDate) }
        if bytes.count == 4, onlyDigits, let year = Int(value),
            birthYears.contains(year)
        {
            found.insert(.birthYear)
        }
        if (3...32).contains(bytes.count),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == 46 || $0 == 95 || $0 == 45 }),
            bytes.contains(where: { ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 })
        {
            found.insert(.handle)
        }
        if isCoordinates(value) { found.insert(.coordinates) }
        if isCoordinate(value) { found.insert(.coordinate) }
        if Vocabulary.countries.contains(value.lowercased()) { found.insert(.country) }
        if Vocabulary.genders.contains(value.lowercased()) { found.insert(.gender) }
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        if (1...3).contains(words.count), words.allSatisfy(isCapitalisedWord) {
            found.insert(.properNoun)
            if words.count == 1 {
                let word = words[0].lowercased()
                if Vocabulary.firstNames.contains(word) { found.insert(.firstName) }
                if Vocabulary.lastNames.contains(word) { found.insert(.lastName) }
            } else if Vocabulary.firstNames.contains(words[0].lowercased()) {
                found.insert(.fullName)
            }
        }
        if value.count >= 20, words.count >= 4 {
            found.insert(.freeText)
            if holdsPersonalData(words) { found.insert(.personalText) }
        }
        return found
    }

    // MARK: - Shapes

    /// `text` without the leading and trailing characters `isTrimmed` names (Foundation's
    /// `trimmingCharacters` bridges through NSString: a quarter of a scan's time).
    static func trimmed(_ text: Substring, isTrimmed: (Character) -> Bool) -> Substring {
        guard let first = text.firstIndex(where: { !isTrimmed($0) }),
            let last = text.lastIndex(where: { !isTrimmed($0) })
        else { return text[text.endIndex...] }
        return text[first...last]
    }

    /// Years of birth of living people who may hold an account: 1900 to 13 years ago. Read once per
    /// process (a Calendar costs tens of microseconds to make on Linux; detectors run per value).
    static let birthYears: ClosedRange<Int> = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return 1900...(calendar.component(.year, from: Date()) - 13)
    }()

    static func isEmail(_ bytes: [UInt8]) -> Bool {
        guard let at = bytes.firstIndex(of: 64), at > 0, at < bytes.count - 3,
            bytes.lastIndex(of: 64) == at, bytes.count <= 254
        else { return false }
        let local = bytes[..<at]
        let domain = bytes[(at + 1)...]
        let localAllowed = Set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-".utf8)
        guard local.allSatisfy(emailLocalBytes.contains), local.first != 46, local.last != 46 else { return false }
        let labels = domain.split(separator: 46, omittingEmptySubsequences: false)
        guard labels.count >= 2, let tld = labels.last, tld.count >= 2,
            tld.allSatisfy({ ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 })
        else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != 45 && label.last != 45
                && label.allSatisfy { isAlphanumeric($0) || $0 == 45 }
        }
    }

    static let emailLocalBytes = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-".utf8)
    static let phoneBytes = Set("0123456789 -.()/+".utf8)

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || ((byte | 0x20) >= 97 && (byte | 0x20) <= 122)
    }

    static func isIPAddress(_ value: String) -> Bool {
        guard value.count >= 3, value.count <= 45 else { return false }
        // Hex digits, dots, colons (and a zone's % and letters are not accepted): cheap to refuse.
        var dots = false
        var colons = false
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "."): dots = true
            case UInt8(ascii: ":"): colons = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
                UInt8(ascii: "A")...UInt8(ascii: "F"):
                continue
            default: return false
            }
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        if dots, !colons { return inet_pton(AF_INET, value, &v4) == 1 }
        return colons && inet_pton(AF_INET6, value, &v6) == 1
    }

    /// Luhn's checksum, and an issuer prefix and length that a card network uses.
    static func isPaymentCard(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (index, byte) in digits.reversed().enumerated() {
            var digit = Int(byte - 48)
            if index % 2 == 1 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        guard sum % 10 == 0 else { return false }
        func prefix(_ count: Int) -> Int { digits.prefix(count).reduce(0) { $0 * 10 + Int($1 - 48) } }
        let length = digits.count
        switch prefix(1) {
        case 4: return [13, 16, 19].contains(length)  // Visa
        case 5: return (51...55).contains(prefix(2)) && length == 16  // Mastercard
        case 2: return (2221...2720).contains(prefix(4)) && length == 16  // Mastercard 2-series
        case 3:
            if [34, 37].contains(prefix(2)) { return length == 15 }  // American Express
            if (3528...3589).contains(prefix(4)) { return (16...19).contains(length) }  // JCB
            return [36, 38, 30].contains(prefix(2)) && length == 14  // Diners Club
        case 6:
            return (prefix(4) == 6011 || prefix(2) == 65 || (644...649).contains(prefix(3)))
                && (16...19).contains(length)  // Discover
        default: return false
        }
    }

    /// A phone number as people write one: `+` and 8–15 digits, or 10–11 digits in groups
    /// separated by spaces, dashes, dots or parentheses (`(555) 010-4477`, `030 1234 5678`).
    static func isPhone(_ bytes: [UInt8], digits: [UInt8]) -> Bool {
        guard bytes.allSatisfy(phoneBytes.contains), let first = bytes.first else { return false }
        let plusCount = bytes.filter { $0 == 43 }.count
        if first == 43 { return plusCount == 1 && (8...15).contains(digits.count) }
        guard plusCount == 0, (10...11).contains(digits.count) else { return false }
        let groups = bytes.split { !($0 >= 48 && $0 <= 57) }
        return groups.count >= 2 && groups.count <= 4 && groups.allSatisfy { $0.count >= 2 }
    }

    static let ibanLengths: [String: Int] = [
        "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
        "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
        "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
        "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    ]

    /// A country's length and the ISO 13616 check: the rearranged number mod 97 is 1.
    static func isIBAN(_ bytes: [UInt8]) -> Bool {
        let compact = bytes.filter { $0 != 32 }.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
        guard compact.count >= 15, compact.count <= 34, compact.allSatisfy(isAlphanumeric),
            let country = String(bytes: compact.prefix(2), encoding: .ascii),
            ibanLengths[country] == compact.count,
            compact[2] >= 48, compact[2] <= 57, compact[3] >= 48, compact[3] <= 57
        else { return false }
        var remainder = 0
        for byte in compact[4...] + compact[..<4] {
            if byte >= 48 && byte <= 57 {
                remainder = (remainder * 10 + Int(byte - 48)) % 97
            } else {
                remainder = (remainder * 100 + Int(byte - 55)) % 97
            }
        }
        return remainder == 1
    }

    /// Area 001–899 but not 666, group 01–99, serial 0001–9999.
    static func isSSN(_ digits: [UInt8]) -> Bool {
        let number = digits.map { Int($0 - 48) }
        let area = number[0] * 100 + number[1] * 10 + number[2]
        let group = number[3] * 10 + number[4]
        let serial = number[5...].reduce(0) { $0 * 10 + $1 }
        return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
    }

    /// Two letters, six digits, a final A–D; the letters the HMRC never issues are refused.
    static func isNINO(_ bytes: [UInt8]) -> Bool {
        let compact = bytes.filter { $0 != 32 }.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
        guard compact.count == 9,
            compact[0] >= 65, compact[0] <= 90, compact[1] >= 65, compact[1] <= 90,
            compact[2...7].allSatisfy({ $0 >= 48 && $0 <= 57 }), (65...68).contains(compact[8])
        else { return false }
        let first = Character(UnicodeScalar(compact[0]))
        let second = Character(UnicodeScalar(compact[1]))
        guard !"DFIQUV".contains(first), !"DFIOQUV".contains(second) else { return false }
        return !["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"].contains(String([first, second]))
    }

    static func isPostcode(_ value: String) -> Bool {
        let upper = value.uppercased()
        let bytes = Array(upper.utf8)
        func digit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
        func letter(_ byte: UInt8) -> Bool { byte >= 65 && byte <= 90 }
        // US ZIP and ZIP+4; five-digit codes (DE, FR, ES, IT) and four-digit ones (AT, BE, CH, DK, NL without letters).
        if bytes.count == 5 || bytes.count == 4, bytes.allSatisfy(digit) { return true }
        if bytes.count == 10, bytes[5] == 45, bytes[..<5].allSatisfy(digit), bytes[6...].allSatisfy(digit) {
            return true
        }
        // NL: 1234 AB.
        if bytes.count == 7, bytes[..<4].allSatisfy(digit), bytes[4] == 32, bytes[5...].allSatisfy(letter) {
            return true
        }
        // CA: A1A 1A1.
        if bytes.count == 7, letter(bytes[0]), digit(bytes[1]), letter(bytes[2]), bytes[3] == 32, digit(bytes[4]),
            letter(bytes[5]), digit(bytes[6])
        {
            return true
        }
        // UK: outward code (A9, A99, AA9, AA99, A9A, AA9A), a space, inward code (9AA).
        let parts = upper.split(separator: " ")
        if parts.count == 2, parts[1].count == 3 {
            let inward = Array(parts[1].utf8)
            let outward = Array(parts[0].utf8)
            guard digit(inward[0]), letter(inward[1]), letter(inward[2]), (2...4).contains(outward.count),
                letter(outward[0])
            else { return false }
            return outward.dropFirst().allSatisfy { digit($0) || letter($0) } && outward.contains(where: digit)
        }
        return false
    }

    /// "12 Example Street", "12b Baker St, London", "Hauptstraße 5".
    static func isStreetAddress(_ value: String) -> Bool {
        // A house number and a space, or it is not an address: most values stop here.
        guard value.utf8.contains(where: { $0 >= 48 && $0 <= 57 }), value.utf8.contains(32) else { return false }
        let line = value.split(separator: ",").first.map(String.init) ?? value
        let words = line.lowercased().split(separator: " ").map { String(trimmed($0, isTrimmed: \.isPunctuation)) }
        guard words.count >= 2, words.count <= 8 else { return false }
        let number: (Substring.Element) -> Bool = { $0.isNumber }
        let startsWithNumber = words[0].first.map(number) ?? false && words[0].count <= 6
        let endsWithNumber = words[words.count - 1].first.map(number) ?? false
        if startsWithNumber, words.dropFirst().contains(where: { Vocabulary.streetWords.contains($0) }) { return true }
        if endsWithNumber,
            words.dropLast().contains(where: { word in
                Vocabulary.streetWords.contains(word)
                    || Vocabulary.streetSuffixes.contains { word.hasSuffix($0) && word.count > $0.count }
            })
        {
            return true
        }
        return false
    }

    /// `YYYY-MM-DD`, `DD/MM/YYYY`, `MM/DD/YYYY` or `DD.MM.YYYY`, without a time, born 1900 to 13 years ago.
    static func isBirthDate(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 10 else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard bytes[index] >= 48, bytes[index] <= 57 else { return nil }
                value = value * 10 + Int(bytes[index] - 48)
            }
            return value
        }
        let year: Int?
        let month: Int?
        let day: Int?
        if bytes[4] == 45, bytes[7] == 45 {
            (year, month, day) = (number(0..<4), number(5..<7), number(8..<10))
        } else if (bytes[2] == 47 && bytes[5] == 47) || (bytes[2] == 46 && bytes[5] == 46) {
            let first = number(0..<2)
            let second = number(3..<5)
            year = number(6..<10)
            // Day-first unless that cannot be a date.
            if let first, first > 12 { (day, month) = (first, second) } else { (day, month) = (second, first) }
        } else {
            return false
        }
        guard let year, let month, let day else { return false }
        return birthYears.contains(year) && (1...12).contains(month) && (1...31).contains(day)
    }

    static func isCoordinates(_ value: String) -> Bool {
        guard value.utf8.contains(UInt8(ascii: ".")), value.utf8.count <= 40 else { return false }
        let parts = value.split(whereSeparator: { $0 == "," || $0 == " " || $0 == ";" })
        guard parts.count == 2, let latitude = Double(parts[0]), let longitude = Double(parts[1]) else { return false }
        return abs(latitude) <= 90 && abs(longitude) <= 180 && parts.allSatisfy(hasThreeDecimals)
    }

    static func isCoordinate(_ value: String) -> Bool {
        guard let number = Double(value), abs(number) <= 180 else { return false }
        return hasThreeDecimals(Substring(value))
    }

    static func hasThreeDecimals(_ text: Substring) -> Bool {
        guard let dot = text.firstIndex(of: ".") else { return false }
        return text[text.index(after: dot)...].count >= 3
    }

    static func isCapitalisedWord(_ word: Substring) -> Bool {
        guard let first = word.first, first.isUppercase, word.count >= 2, word.count <= 30 else { return false }
        return word.allSatisfy { $0.isLetter || $0 == "-" || $0 == "'" }
    }

    /// Whether free text holds an email address, a phone number, a card or IBAN-shaped number, or a
    /// first name from the dictionary followed by a capitalised word ("this is Ada Lovelace").
    static func holdsPersonalData(_ words: [Substring]) -> Bool {
        for (index, raw) in words.enumerated() {
            let word = String(trimmed(raw, isTrimmed: { ".,;:!?()[]<>\"'".contains($0) }))
            if word.contains("@"), isEmail(Array(word.utf8)) { return true }
            let bytes = Array(word.utf8)
            let digits = bytes.filter { $0 >= 48 && $0 <= 57 }
            if bytes.first == 43, isPhone(bytes, digits: digits) { return true }
            if digits.count >= 13, digits.count == bytes.count, isPaymentCard(digits) { return true }
            if bytes.count >= 15, isIBAN(bytes) { return true }
            if index + 1 < words.count, word.first?.isUppercase == true,
                Vocabulary.firstNames.contains(word.lowercased()),
                let next = trimmed(words[index + 1], isTrimmed: \.isPunctuation).first, next.isUppercase
            {
                return true
            }
        }
        return false
    }
}
