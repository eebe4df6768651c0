extension Base64 {
    /// Encodes three bytes to four characters at a time, writing straight into the string's storage.
    static func encode(_ bytes: [UInt8], alphabet: Alphabet, padded: Bool) -> String {
        let remainder = bytes.count % 3
        let tailCount = remainder == 0 ? 0 : (padded ? 4 : remainder + 1)
        let outputCount = bytes.count / 3 * 4 + tailCount
        guard outputCount > 0 else { return "" }
        return String(unsafeUninitializedCapacity: outputCount) { output in
            bytes.withUnsafeBufferPointer { input in
                alphabet.encoding.withUnsafeBufferPointer { table in
                    var i = 0
                    var o = 0
                    while i + 3 <= input.count {
                        let group = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                        output[o] = table[Int(group >> 18 & 0x3F)]
                        output[o + 1] = table[Int(group >> 12 & 0x3F)]
                        output[o + 2] = table[Int(group >> 6 & 0x3F)]
                        output[o + 3] = table[Int(group & 0x3F)]
                        i += 3
                        o += 4
                    }
                    if remainder == 1 {
                        let group = UInt32(input[i]) << 16
                        output[o] = table[Int(group >> 18 & 0x3F)]
                        output[o + 1] = table[Int(group >> 12 & 0x3F)]
                        o += 2
                    } else if remainder == 2 {
                        let group = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
                        output[o] = table[Int(group >> 18 & 0x3F)]
                        output[o + 1] = table[Int(group >> 12 & 0x3F)]
                        output[o + 2] = table[Int(group >> 6 & 0x3F)]
                        o += 3
                    }
                    while o < outputCount {
                        output[o] = UInt8(ascii: "=")
                        o += 1
                    }
                }
            }
            return outputCount
        }
    }
}
