import Primitives
import Testing

/// RFC 4231 test cases 1, 2 and 6 for HMAC-SHA-256.
@Suite struct HMACSHA256Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let key: [UInt8]
        let message: [UInt8]
        let code: [UInt8]
        var testDescription: String { name }
    }

    static let vectors = [
        Vector(
            name: "RFC 4231 case 1", key: [UInt8](repeating: 0x0b, count: 20), message: utf8("Hi There"),
            code: hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")),
        Vector(
            name: "RFC 4231 case 2", key: utf8("Jefe"), message: utf8("what do ya want for nothing?"),
            code: hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")),
        Vector(
            name: "RFC 4231 case 6", key: [UInt8](repeating: 0xaa, count: 131),
            message: utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
            code: hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")),
        Vector(
            name: "RFC 4231 case 4", key: Array(1...25), message: [UInt8](repeating: 0xcd, count: 50),
            code: hex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")),
        Vector(
            name: "RFC 4231 case 7", key: [UInt8](repeating: 0xaa, count: 131),
            message: utf8(
                "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
            code: hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")),
        // Not from the RFC; checked with Python's hmac module: a key of exactly one block, and one byte over.
        Vector(
            name: "64-byte key", key: Array(0..<64), message: utf8("exactly one block of key"),
            code: hex("aed89a53f83495834369f6c764db660e0e41d224347eb2b6f2054241399e36e2")),
        Vector(
            name: "65-byte key", key: Array(0..<65), message: utf8("one byte over a block of key"),
            code: hex("71f187949fa0f711f958715e6e173bc75ed3b174fc56575af118483a668f02cf")),
        // Not from the RFC; checked with Python's hmac module. Exercises empty key and message.
        Vector(
            name: "empty key and message", key: [], message: [],
            code: hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")),
    ]

    @Test(arguments: vectors)
    func computesPublishedCode(_ vector: Vector) {
        #expect(HMACSHA256.authenticationCode(for: vector.message, key: vector.key) == vector.code)
    }

    @Test(arguments: vectors)
    func acceptsPublishedCode(_ vector: Vector) {
        #expect(HMACSHA256.isValid(vector.code, for: vector.message, key: vector.key))
    }

    @Test(arguments: vectors)
    func rejectsAlteredCodes(_ vector: Vector) {
        #expect(!HMACSHA256.isValid(flippingBit(0, of: vector.code), for: vector.message, key: vector.key))
        #expect(!HMACSHA256.isValid(flippingBit(255, of: vector.code), for: vector.message, key: vector.key))
        #expect(!HMACSHA256.isValid(Array(vector.code.prefix(16)), for: vector.message, key: vector.key))
        #expect(!HMACSHA256.isValid([], for: vector.message, key: vector.key))
        #expect(!HMACSHA256.isValid(vector.code, for: vector.message + [0], key: vector.key))
        // Not `key + [0]`: HMAC zero-pads short keys, so a trailing zero byte gives the same code.
        #expect(!HMACSHA256.isValid(vector.code, for: vector.message, key: vector.key + [1]))
    }
}
