extension Base64 {
    /// Decodes from the string's UTF-8 storage without copying it.
    static func decode(_ string: String, alphabet: Alphabet) throws(PrimitivesError) -> [UInt8] {
        var string = string
        return try string.withUTF8 { input in
            Result { () throws(PrimitivesError) in try decode(input, alphabet: alphabet) }
        }.get()
    }

    /// Validates the shape (padding, length), then decodes four characters to three bytes at a time.
    ///
    /// Invalid characters are detected by OR-ing every table lookup together and checking the top bit
    /// once at the end, keeping the loop branch-free; the error path then finds the offending offset.
    static func decode(_ input: UnsafeBufferPointer<UInt8>, alphabet: Alphabet) throws(PrimitivesError) -> [UInt8] {
        let equals = UInt8(ascii: "=")
        var dataCount = input.count
        if dataCount > 0 && input[dataCount - 1] == equals {
            guard dataCount % 4 == 0 else {
                throw PrimitivesError(.invalidBase64, "padded \(alphabet.name) must be a multiple of 4 characters long, got \(input.count)")
            }
            dataCount -= 1
            if input[dataCount - 1] == equals { dataCount -= 1 }
        }
        let remainder = dataCount % 4
        guard remainder != 1 else {
            throw PrimitivesError(.invalidBase64, "\(alphabet.name) cannot be \(dataCount) characters long (4n + 1)")
        }
        let outputCount = dataCount / 4 * 3 + (remainder == 0 ? 0 : remainder - 1)
        var output = [UInt8](repeating: 0, count: outputCount)
        var seen: UInt8 = 0
        var trailingBits: UInt8 = 0
        alphabet.decoding.withUnsafeBufferPointer { table in
            output.withUnsafeMutableBufferPointer { output in
                var i = 0
                var o = 0
                while i + 4 <= dataCount {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    seen |= a | b | c | d
                    let group = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    output[o] = UInt8(truncatingIfNeeded: group >> 16)
                    output[o + 1] = UInt8(truncatingIfNeeded: group >> 8)
                    output[o + 2] = UInt8(truncatingIfNeeded: group)
                    i += 4
                    o += 3
                }
                if remainder == 2 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    seen |= a | b
                    output[o] = a << 2 | b >> 4
                    trailingBits = b & 0x0F
                } else if remainder == 3 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])]
                    seen |= a | b | c
                    output[o] = a << 2 | b >> 4
                    output[o + 1] = b << 4 | c >> 2
                    trailingBits = c & 0x03
                }
            }
        }
        if seen & 0x80 != 0 {
            secureWipe(&output)
            let offset = input.prefix(dataCount).firstIndex { alphabet.decoding[Int($0)] == Alphabet.invalid } ?? 0
            throw PrimitivesError(.invalidBase64, "character at offset \(offset) is not in the \(alphabet.name) alphabet or is misplaced padding")
        }
        if trailingBits != 0 {
            secureWipe(&output)
            throw PrimitivesError(.invalidBase64, "\(alphabet.name) has non-zero trailing bits in its last character (non-canonical encoding)")
        }
        return output
    }
}
