import Foundation

/// A Swift value that can be a query parameter.
public protocol PostgresEncodable: Sendable {
    static var postgresType: PostgresType { get }
    var postgresBind: PostgresBind { get }
}

/// A Swift value that a result column (in PostgreSQL's text format) decodes into.
public protocol PostgresDecodable {
    init(postgresText text: String) throws(PostgresError)
}

extension PostgresEncodable where Self: CustomStringConvertible {
    public var postgresBind: PostgresBind { PostgresBind(type: Self.postgresType, value: Array(description.utf8)) }
}

extension String: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .text }
    public var postgresBind: PostgresBind { PostgresBind(type: .text, value: Array(utf8)) }
    public init(postgresText text: String) { self = text }
}

/// Integers decode the same way whatever their width.
extension PostgresDecodable where Self: FixedWidthInteger {
    public init(postgresText text: String) throws(PostgresError) {
        guard let value = Self(text) else { throw .decodingFailure(text, as: "\(Self.self)") }
        self = value
    }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .int8 }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .int8 }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .int4 }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .bool }
    public var postgresBind: PostgresBind { PostgresBind(type: .bool, value: Array((self ? "t" : "f").utf8)) }
    public init(postgresText text: String) throws(PostgresError) {
        switch text {
        case "t": self = true
        case "f": self = false
        default: throw .decodingFailure(text, as: "Bool")
        }
    }
}

/// `bytea`: bound in binary, read from the server's hex text format (`\x…`).
extension Array: PostgresEncodable, PostgresDecodable where Element == UInt8 {
    public static var postgresType: PostgresType { .bytea }
    public var postgresBind: PostgresBind { PostgresBind(type: .bytea, value: self, isBinary: true) }
    public init(postgresText text: String) throws(PostgresError) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw .decodingFailure("(bytea of \(utf8.count) characters)", as: "[UInt8]")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else {
                throw .decodingFailure("(bytea with a non-hex digit)", as: "[UInt8]")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }

    static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `timestamptz`, exchanged as ISO 8601 in UTC (each connection sets `TimeZone=UTC`, `DateStyle=ISO`).
extension Date: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .timestamptz }
    /// Sent to the microsecond, as PostgreSQL keeps it: a time read from the database and bound again
    /// compares equal to the stored one (ISO 8601 with Foundation's formatter kept milliseconds only,
    /// so `stored < read-back` failed within the same millisecond).
    public var postgresBind: PostgresBind {
        PostgresBind(type: .timestamptz, value: Self.timestampText(self))
    }

    /// `2026-11-22 10:20:30.123456+00`, the inverse of ``parseTimestamp(_:)``; outside years 1–9999
    /// (or for a time that is not finite) Foundation's ISO 8601 form, which PostgreSQL also reads.
    static func timestampText(_ date: Date) -> [UInt8] {
        let seconds = date.timeIntervalSince1970
        // Years 1 and 9999 bound the four-digit form (-62135596800 and 253402300799).
        guard seconds.isFinite, seconds >= -62_135_596_800, seconds < 253_402_300_800 else {
            return Array(date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)).utf8)
        }
        let micros = Int64((seconds * 1_000_000).rounded())
        let (whole, fraction) = micros.floorDividedWithRemainder(by: 1_000_000)
        let (days, secondOfDay) = whole.floorDividedWithRemainder(by: 86_400)
        // The civil date of a day count (proleptic Gregorian), after H. Hinnant's algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var text: [UInt8] = []
        text.reserveCapacity(29)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); text.append(UInt8(ascii: "-")); digits(month, 2); text.append(UInt8(ascii: "-")); digits(day, 2)
        text.append(UInt8(ascii: " "))
        digits(secondOfDay / 3600, 2); text.append(UInt8(ascii: ":")); digits(secondOfDay / 60 % 60, 2); text.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); text.append(UInt8(ascii: ".")); digits(fraction, 6)
        text += Array("+00".utf8)
        return text
    }

    public init(postgresText text: String) throws(PostgresError) {
        guard let seconds = Self.parseTimestamp(Array(text.utf8)) else { throw .decodingFailure(text, as: "Date") }
        self = Date(timeIntervalSince1970: seconds)
    }

    /// Parses the server's ISO output, `2026-11-22 10:20:30.123456+00` (fraction and minutes of the
    /// offset optional), without Foundation's slower formatters.
    static func parseTimestamp(_ s: [UInt8]) -> Double? {
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= s.count else { return nil }
            var value = 0
            for i in from..<from + count {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(s[i]) else { return nil }
                value = value * 10 + Int(s[i] - UInt8(ascii: "0"))
            }
            return value
        }
        guard s.count >= 22, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < s.count, s[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < s.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(s[index]) {
                fraction += Double(s[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
        }
        guard index + 3 <= s.count, s[index] == UInt8(ascii: "+") || s[index] == UInt8(ascii: "-"),
            let offsetHours = number(index + 1, 2)
        else { return nil }
        let sign = s[index] == UInt8(ascii: "-") ? -1 : 1
        var offsetMinutes = 0
        if index + 6 <= s.count, s[index + 3] == UInt8(ascii: ":"), let minutes = number(index + 4, 2) { offsetMinutes = minutes }
        // Days from the civil date (proleptic Gregorian), after H. Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146097 + dayOfEra - 719468
        let local = days * 86400 + hour * 3600 + minute * 60 + second
        return Double(local - sign * (offsetHours * 3600 + offsetMinutes * 60)) + fraction
    }
}

/// A `jsonb` value carried as its JSON text; the caller's JSON library parses it.
public struct PostgresJSONB: PostgresEncodable, PostgresDecodable, Hashable {
    public var json: String
    public init(_ json: String) { self.json = json }
    public init(postgresText text: String) { json = text }
    public static var postgresType: PostgresType { .jsonb }
    public var postgresBind: PostgresBind { PostgresBind(type: .jsonb, value: Array(json.utf8)) }
}

/// A `text[]` parameter: many values in one bind, e.g. for `unnest(...)` so one statement writes many rows.
///
/// Sent as PostgreSQL's array literal, every element quoted (`"` and `\` escaped), so any text round
/// trips; a NUL in an element is refused like in any text parameter.
public struct PostgresTextArray: PostgresEncodable, Hashable {
    public var values: [String]
    public init(_ values: [String]) { self.values = values }
    public static var postgresType: PostgresType { .textArray }
    public var postgresBind: PostgresBind {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return PostgresBind(type: .textArray, value: bytes)
    }
}

/// A `bytea[]` parameter: many byte strings in one bind, for `unnest(...)`.
///
/// Sent in PostgreSQL's binary array format (`array_recv`: dimensions, no-null flag, element type,
/// then each element's length and bytes), so the bytes travel as they are, with no hex text made of
/// them on either side.
public struct PostgresByteaArray: PostgresEncodable, Hashable {
    public var values: [[UInt8]]
    public init(_ values: [[UInt8]]) { self.values = values }
    public static var postgresType: PostgresType { .byteaArray }
    public var postgresBind: PostgresBind {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + values.reduce(0) { $0 + 4 + $1.count })
        func append(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
        // An empty array has no dimensions.
        append(values.isEmpty ? 0 : 1)
        append(0)  // no NULL elements
        append(Int32(bitPattern: PostgresType.bytea.rawValue))
        if !values.isEmpty {
            append(Int32(values.count))
            append(1)  // lower bound
        }
        for value in values {
            append(Int32(value.count))
            bytes.append(contentsOf: value)
        }
        return PostgresBind(type: .byteaArray, value: bytes, isBinary: true)
    }
}

extension PostgresError {
    static func decodingFailure(_ text: String, as type: String) -> PostgresError {
        PostgresError(code: .decoding, message: "cannot decode \(type) from \"\(text.prefix(64))\"")
    }
}

extension Int64 {
    /// Quotient rounded toward negative infinity, and the remainder that goes with it (never negative
    /// for a positive divisor): what calendar arithmetic on times before 1970 needs.
    func floorDividedWithRemainder(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
