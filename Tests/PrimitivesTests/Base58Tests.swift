import Primitives
import Testing

/// Bitcoin's base58 vectors (Bitcoin Core's `base58_encode_decode.json`), leading zeros, rejection
/// of characters outside the alphabet, and random round trips.
@Suite struct Base58Tests {
    static let vectors: [(String, String)] = [
        ("", ""),
        ("61", "2g"),
        ("626262", "a3gV"),
        ("636363", "aPEr"),
        ("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"),
        ("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),
        ("516b6fcd0f", "ABnLTmg"),
        ("bf4f89001e670274dd", "3SEo3LWLoPntC"),
        ("572e4794", "3EFU7m"),
        ("ecac89cad93923c02321", "EJDM8drfXA6uyA"),
        ("10c8511e", "Rt5zm"),
        ("00000000000000000000", "1111111111"),
    ]

    @Test(arguments: vectors)
    func bitcoinVectors(_ vector: (String, String)) throws {
        let bytes = hexBytes(vector.0)
        #expect(Base58.encode(bytes) == vector.1)
        #expect(try Base58.decode(vector.1) == bytes)
    }

    @Test("characters outside the alphabet are refused with their offset")
    func refusesOutsideAlphabet() {
        for bad in ["0abc", "abO", "Il", "ab c", "é", "ab+"] {
            #expect { try Base58.decode(bad) } throws: { ($0 as? PrimitivesError)?.code == .invalidInput }
        }
        #expect { try Base58.decode("12O4") } throws: { ($0 as? PrimitivesError)?.message.contains("offset 2") == true }
    }

    @Test("random bytes, with and without leading zeros, round-trip")
    func roundTrips() throws {
        for length in 0..<50 {
            var bytes = SecureRandom.bytes(count: length)
            if length % 3 == 0, length > 1 { bytes[0] = 0; bytes[1] = 0 }
            #expect(try Base58.decode(Base58.encode(bytes)) == bytes)
        }
    }
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}
