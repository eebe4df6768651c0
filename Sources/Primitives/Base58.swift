/// Base58 in Bitcoin's alphabet: what Matrix recovery keys are written in.
///
/// The alphabet leaves out `0`, `O`, `I` and `l`, which people confuse when copying a key by hand.
/// A number in base 58, big-endian, with each leading zero byte written as `1`. Quadratic in the
/// length, so callers cap what they decode; recovery keys are 35 bytes.
public enum Base58 {
    static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    /// The value of each ASCII character, or 0xFF for characters outside the alphabet.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }()

    /// Encodes `bytes`.
    public static func encode(_ bytes: [UInt8]) -> String {
        let zeros = bytes.prefix { $0 == 0 }.count
        // Digits in base 58, least significant first.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 138 / 100 + 1)
        for byte in bytes[zeros...] {
            var carry = Int(byte)
            for index in digits.indices {
                carry += Int(digits[index]) << 8
                digits[index] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        let characters = [UInt8](repeating: alphabet[0], count: zeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: characters, as: UTF8.self)
    }

    /// Decodes base58 text (no whitespace).
    ///
    /// - Throws: `.invalidInput` naming the offset of the first character outside the alphabet;
    ///   the message never repeats the input.
    public static func decode(_ string: String) throws(PrimitivesError) -> [UInt8] {
        let characters = Array(string.utf8)
        let ones = characters.prefix { $0 == alphabet[0] }.count
        // Bytes, least significant first.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count * 733 / 1000 + 1)
        for (offset, character) in characters.enumerated().dropFirst(ones) {
            let value = values[Int(character)]
            guard value != 0xFF else {
                throw PrimitivesError(.invalidInput, "character at offset \(offset) is not base58 (the alphabet leaves out 0, O, I and l)")
            }
            var carry = Int(value)
            for index in bytes.indices {
                carry += Int(bytes[index]) * 58
                bytes[index] = UInt8(carry & 0xFF)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xFF))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: ones) + bytes.reversed()
    }
}
