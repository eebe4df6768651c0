extension TransactionScanner {
    /// What a body holds at its top level.
    enum Body {
        /// The members whose keys the plan names, or whose keys could not be read, in body order.
        case object([ScannedMember])
        /// JSON, but not an object.
        case notAnObject
    }

    /// Scans a whole body: a JSON object, each member the plan names scanned as it says, the others skipped.
    ///
    /// The top-level members are checked strictly (`"key": value`, separated by commas, nothing after the
    /// closing brace): a body wrong there is not JSON, whatever its entries.
    /// - Throws: ``Malformed`` if the body is not JSON.
    mutating func scanBody(_ fields: [String: ScanPlan]) throws(Malformed) -> Body {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else {
            try skipNonObject()
            return .notAnObject
        }
        let members = try scanObject(strict: true) { fields[$0] }
        skipWhitespace()
        guard index == bytes.count else { throw malformed("trailing data after the top-level object") }
        return .object(members)
    }

    /// Checks that a body not starting with `{` is still one JSON value (so the answer is "not an object"
    /// rather than "not JSON"); arrays and strings only for balance, scalars strictly.
    mutating func skipNonObject() throws(Malformed) {
        let value = try skipValue()
        skipWhitespace()
        guard !value.isEmpty, index == bytes.count else { throw malformed("not a JSON value") }
        switch bytes[value.lowerBound] {
        case UInt8(ascii: "["), UInt8(ascii: "\""): return
        default:
            guard (try? JSONValue.parseBuffer(UnsafeBufferPointer(rebasing: bytes[value]))) != nil else {
                throw malformed("not a JSON value")
            }
        }
    }

    /// Scans the value at `index` as `plan` asks, leaving `index` just past it.
    mutating func scan(_ plan: ScanPlan) throws(Malformed) -> Scanned {
        switch plan.shape {
        case .entry:
            return .entry(try skipValue())
        case .array:
            guard current == UInt8(ascii: "["), let element = plan.each.first else { return try skipOther() }
            return .elements(try scanArray(element))
        case .object:
            guard current == UInt8(ascii: "{") else { return try skipOther() }
            return .members(try scanObject(strict: false, plan.member))
        }
    }

    /// Skips a value that is not the container a plan expects: `null` (absent) or the wrong type.
    mutating func skipOther() throws(Malformed) -> Scanned {
        let range = try skipValue()
        return bytes[range].elementsEqual("null".utf8) ? .null : .wrongType
    }

    /// Skips whatever stands between a value and the next separator (`[1] x,`); true if there was something.
    mutating func skipJunk() throws(Malformed) -> Bool {
        skipWhitespace()
        switch current {
        case nil, UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"): return false
        default:
            _ = try skipValue()
            return true
        }
    }

    /// Scans the array at `index` (its `[`), each element as `plan` asks. An empty or garbled element is
    /// still an element (its parse fails later); only a missing or mismatched `]` is ``Malformed``.
    mutating func scanArray(_ plan: ScanPlan) throws(Malformed) -> [Scanned] {
        index += 1
        skipWhitespace()
        var elements: [Scanned] = []
        if current == UInt8(ascii: "]") {
            index += 1
            return elements
        }
        while true {
            skipWhitespace()
            let element = try scan(plan)
            elements.append(try skipJunk() ? .unparseable : element)
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return elements
            case nil: throw malformed("unexpected end of input in an array")
            default: throw malformed("mismatched bracket")
            }
        }
    }

    /// Scans the object at `index` (its `{`); `plan` says which members to scan, and how.
    /// - Parameter strict: A member that is not `"key": value` is ``Malformed`` (the top level); otherwise
    ///   it is recorded as unreadable and the scan goes on.
    mutating func scanObject(strict: Bool, _ plan: (String) -> ScanPlan?) throws(Malformed) -> [ScannedMember] {
        index += 1
        skipWhitespace()
        var members: [ScannedMember] = []
        if current == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            if let member = try scanMember(strict: strict, plan) { members.append(member) }
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return members
            case nil: throw malformed("unexpected end of input in an object")
            default: throw malformed(strict ? "expected ',' or '}'" : "mismatched bracket")
            }
        }
    }

    /// Scans one member, leaving `index` at the separator after it.
    /// - Returns: nil for a member the plan does not name (skipped, unread).
    mutating func scanMember(strict: Bool, _ plan: (String) -> ScanPlan?) throws(Malformed) -> ScannedMember? {
        let start = index
        guard current == UInt8(ascii: "\"") else {
            if strict { throw malformed("expected an object key") }
            _ = try skipValue()
            return ScannedMember(key: .failure(JSONError(code: .syntax, message: "expected an object key", offset: start)), value: .null)
        }
        try skipString()
        let key = decodeKey(start..<index)
        skipWhitespace()
        guard current == UInt8(ascii: ":") else {
            if strict { throw malformed("expected ':'") }
            _ = try skipValue()
            return ScannedMember(key: key, value: .unparseable)
        }
        index += 1
        skipWhitespace()
        switch current {
        case nil, UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"):
            if strict { throw malformed("expected a value") }
            return ScannedMember(key: key, value: .unparseable)
        default: break
        }
        guard case .success(let name) = key else {
            _ = try skipValue()
            return ScannedMember(key: key, value: .null)
        }
        guard let memberPlan = plan(name) else {
            _ = try skipValue()
            return nil
        }
        let value = try scan(memberPlan)
        guard try !skipJunk() else {
            if strict { throw malformed("expected ',' or '}'") }
            return ScannedMember(key: key, value: .unparseable)
        }
        return ScannedMember(key: key, value: value)
    }

    /// A key, decoded strictly: a key with a lone surrogate or invalid UTF-8 is unreadable.
    func decodeKey(_ range: Range<Int>) -> Result<String, JSONError> {
        var parser = JSONParser(UnsafeBufferPointer(rebasing: bytes[range]))
        return Result { () throws(JSONError) -> String in try parser.parseString() }
    }
}
