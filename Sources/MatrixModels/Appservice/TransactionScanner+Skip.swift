extension TransactionScanner {
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Skips a string from its opening quote to just past its closing quote, without judging its content
    /// (escapes, control characters and UTF-8 are the strict parser's business).
    /// - Throws: ``Malformed`` if the input ends inside it.
    mutating func skipString() throws(Malformed) {
        let start = index
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
        index = start
        throw malformed("unterminated string")
    }

    /// Skips one value leniently: up to the next `,`, `}` or `]` outside strings and brackets, or the end
    /// of the input.
    ///
    /// Only balance is checked (strings end, brackets match); the tokens themselves are not, so an entry
    /// with a syntax error inside is delimited all the same and only its own parse fails. Iterative: the
    /// open brackets live in ``open``, on the heap.
    /// - Returns: Where the value lies, without surrounding whitespace; empty if there is none (`[1,,2]`).
    /// - Throws: ``Malformed`` on a mismatched bracket, or if the input ends inside a string or bracket.
    mutating func skipValue() throws(Malformed) -> Range<Int> {
        let start = index
        var end = index
        open.removeAll(keepingCapacity: true)
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                try skipString()
                end = index
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                open.append(bytes[index] == UInt8(ascii: "{"))
                index += 1
                end = index
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard let isObject = open.popLast() else { return start..<end }
                guard isObject == (bytes[index] == UInt8(ascii: "}")) else { throw malformed("mismatched bracket") }
                index += 1
                end = index
            case UInt8(ascii: ","):
                if open.isEmpty { return start..<end }
                index += 1
            case 0x20, 0x09, 0x0A, 0x0D:
                index += 1
            default:
                index += 1
                end = index
            }
        }
        guard open.isEmpty else { throw malformed("unexpected end of input inside a value") }
        return start..<end
    }
}
