/// Base64 as Matrix uses it: unpadded on output, padded or unpadded accepted on input (spec appendix
/// "Unpadded Base64"), plus the URL-safe alphabet.
///
/// Hand-written rather than via Foundation so hot paths (keys, signatures, ciphertexts) avoid `Data`.
public enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let urlSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let standardDecode = decodeTable(standard)
    static let urlSafeDecode = decodeTable(urlSafe)

    public static func encodeUnpadded(_ bytes: [UInt8]) -> String { encode(bytes, standard, padded: false) }
    public static func encodePadded(_ bytes: [UInt8]) -> String { encode(bytes, standard, padded: true) }
    public static func encodeURLSafeUnpadded(_ bytes: [UInt8]) -> String { encode(bytes, urlSafe, padded: false) }

    /// Decodes standard base64, padded or not.
    ///
    /// Non-zero trailing bits in the last character are refused: they would let two strings decode
    /// to the same bytes, and no conforming encoder produces them.
    /// - Throws: `invalidBase64` for characters outside the alphabet, misplaced padding or an impossible length.
    public static func decode(_ string: String) throws(PrimitivesError) -> [UInt8] {
        try decode(string, standardDecode)
    }

    /// Decodes URL-safe base64 (`-` and `_`), padded or not.
    public static func decodeURLSafe(_ string: String) throws(PrimitivesError) -> [UInt8] {
        try decode(string, urlSafeDecode)
    }

    static func decodeTable(_ alphabet: [UInt8]) -> [UInt8] {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }

    static func encode(_ bytes: [UInt8], _ alphabet: [UInt8], padded: Bool) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let chunk = UInt32(bytes[index]) << 16
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            if padded { output.append(contentsOf: "==".utf8) }
        } else if rest == 2 {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            if padded { output.append(UInt8(ascii: "=")) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ string: String, _ table: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        var input = Array(string.utf8)
        if input.count % 4 == 0, input.last == UInt8(ascii: "=") {
            input.removeLast()
            if input.last == UInt8(ascii: "=") { input.removeLast() }
        }
        guard input.count % 4 != 1 else { throw invalid("impossible length") }
        var output = [UInt8]()
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0, bits = 0
        for character in input {
            let value = table[Int(character)]
            guard value != 0xFF else { throw invalid("character outside the alphabet") }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { throw invalid("non-zero trailing bits") }
        return output
    }

    static func invalid(_ reason: String) -> PrimitivesError {
        PrimitivesError(code: .invalidBase64, message: "invalid base64: \(reason)")
    }
}
