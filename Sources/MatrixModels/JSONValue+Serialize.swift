extension JSONValue {
    /// Compact JSON with object keys in code-point order: deterministic, for request bodies and logs.
    ///
    /// Unlike ``CanonicalJSON`` it accepts every value: doubles are written in Swift's shortest
    /// round-trip form, and non-finite doubles (which JSON cannot express) as `null`.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter(canonical: false)
        try! writer.write(self)  // Non-canonical writing cannot fail.
        return writer.output
    }

    /// ``serialized()`` as a String.
    public func serializedString() -> String {
        String(decoding: serialized(), as: UTF8.self)
    }
}

/// Writes JSON compactly with sorted keys; in canonical mode it refuses what canonical JSON forbids.
struct JSONWriter {
    /// Canonical JSON's integer range: ±(2^53 − 1).
    static let canonicalIntegerRange: ClosedRange<Int64> = -(1 << 53 - 1)...(1 << 53 - 1)

    let canonical: Bool
    var output: [UInt8] = []

    init(canonical: Bool) {
        self.canonical = canonical
        output.reserveCapacity(256)
    }

    mutating func write(_ value: JSONValue) throws(JSONError) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let bool): output.append(contentsOf: (bool ? "true" : "false").utf8)
        case .integer(let integer):
            if canonical && !Self.canonicalIntegerRange.contains(integer) {
                throw JSONError(code: .notCanonical, message: "integer \(integer) is outside ±(2^53 − 1)")
            }
            output.append(contentsOf: String(integer).utf8)
        case .double(let double):
            if canonical { throw JSONError(code: .notCanonical, message: "canonical JSON has no floating-point numbers") }
            output.append(contentsOf: (double.isFinite ? "\(double)" : "null").utf8)
        case .string(let string): writeString(string)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                try write(element)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (offset, key) in keys.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                writeString(key)
                output.append(UInt8(ascii: ":"))
                try write(members[key]!)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Writes a string with the shortest escapes: only `"`, `\` and control characters are escaped.
    /// Runs that need no escape are copied whole (most strings are one run).
    mutating func writeString(_ string: String) {
        output.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                appendEscape(byte)
                runStart = index + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }

    mutating func appendEscape(_ byte: UInt8) {
        switch byte {
        case 0x22: output.append(contentsOf: [0x5C, 0x22])
        case 0x5C: output.append(contentsOf: [0x5C, 0x5C])
        case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
        case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
        case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        default:
            let hex = Array("0123456789abcdef".utf8)
            output.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
