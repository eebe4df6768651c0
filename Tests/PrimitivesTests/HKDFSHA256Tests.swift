import Primitives
import Testing

/// RFC 5869 test cases 1 and 3 (HKDF-SHA-256).
@Suite struct HKDFSHA256Tests {
    @Test func rfc5869Case1() throws {
        let okm = try HKDFSHA256.deriveKey(
            from: [UInt8](repeating: 0x0b, count: 22),
            salt: hex("000102030405060708090a0b0c"),
            info: hex("f0f1f2f3f4f5f6f7f8f9"),
            outputByteCount: 42)
        #expect(okm == hex("""
            3cb25f25faacd57a90434f64d0362f2a 2d2d0a90cf1a5a4c5db02d56ecc4c5bf
            34007208d5b887185865
            """))
    }

    @Test func rfc5869Case3EmptySaltAndInfo() throws {
        let okm = try HKDFSHA256.deriveKey(
            from: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], outputByteCount: 42)
        #expect(okm == hex("""
            8da4e775a563c18f715f802a063c5a31 b8a11f5c5ee1879ec3454e5f3c738d2d
            9d201395faa4b61a96c8
            """))
    }

    /// Not from the RFC; checked with Python's `cryptography`. Empty input key material is still derived.
    @Test func emptyInputKeyMaterial() throws {
        let okm = try HKDFSHA256.deriveKey(from: [], salt: [], info: [], outputByteCount: 16)
        #expect(okm == hex("eb70f01dede9afafa449eee1b1286504"))
    }

    /// Shorter outputs are prefixes of longer ones (same PRK, same T(1)…).
    @Test func shorterOutputIsPrefix() throws {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let long = try HKDFSHA256.deriveKey(from: ikm, salt: [1], info: [2], outputByteCount: 100)
        let short = try HKDFSHA256.deriveKey(from: ikm, salt: [1], info: [2], outputByteCount: 33)
        #expect(Array(long.prefix(33)) == short)
    }

    @Test func outputLengthLimits() throws {
        #expect(try HKDFSHA256.deriveKey(from: [1], salt: [], info: [], outputByteCount: 8160).count == 8160)
        for bad in [0, -1, 8161] {
            let error = #expect(throws: PrimitivesError.self) {
                try HKDFSHA256.deriveKey(from: [1], salt: [], info: [], outputByteCount: bad)
            }
            #expect(error?.code == .invalidInput)
        }
    }
}
