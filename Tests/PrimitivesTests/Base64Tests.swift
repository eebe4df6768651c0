import Foundation
import Primitives
import Testing

/// RFC 4648 §10 vectors (unpadded, as Matrix uses them), strict rejection of malformed input, the
/// URL-safe alphabet, and random round trips checked against Foundation as an independent encoder.
@Suite struct Base64Tests {
    static let rfc4648: [(String, String, String)] = [
        ("", "", ""),
        ("f", "Zg", "Zg=="),
        ("fo", "Zm8", "Zm8="),
        ("foo", "Zm9v", "Zm9v"),
        ("foob", "Zm9vYg", "Zm9vYg=="),
        ("fooba", "Zm9vYmE", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
    ]

    @Test(arguments: rfc4648)
    func encodesRFC4648(_ vector: (String, String, String)) {
        #expect(Base64.encodeUnpadded(utf8(vector.0)) == vector.1)
        #expect(Base64.encodePadded(utf8(vector.0)) == vector.2)
    }

    @Test(arguments: rfc4648)
    func decodesRFC4648PaddedAndUnpadded(_ vector: (String, String, String)) throws {
        #expect(try Base64.decode(vector.1) == utf8(vector.0))
        #expect(try Base64.decode(vector.2) == utf8(vector.0))
        #expect(try Base64.decodeURLSafe(vector.1) == utf8(vector.0))
    }

    static let invalid: [String] = [
        "Zm9v!", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9é",  // characters outside the alphabet
        "Z", "Zm9vY", "Zm9vYmFyZ",  // 4n + 1 characters
        "Zg=", "Zg===", "Zm8==", "Zm9vY===",  // padding that does not fit the length
        "=", "==", "====", "Zm=v", "Z=9v", "=Zm9",  // padding not at the end
        "Zh", "Zm9", "Zm9vYh==",  // non-zero trailing bits
        "-_-_", "Zm9v_w",  // URL-safe characters in standard input
    ]

    @Test(arguments: invalid)
    func rejectsInvalidInput(_ string: String) {
        let error = #expect(throws: PrimitivesError.self) { try Base64.decode(string) }
        #expect(error?.code == .invalidBase64)
    }

    @Test(arguments: ["+/+/", "Zm9v+w", "Zh", "Z"])
    func urlSafeRejectsStandardCharactersAndMalformedInput(_ string: String) {
        let error = #expect(throws: PrimitivesError.self) { try Base64.decodeURLSafe(string) }
        #expect(error?.code == .invalidBase64)
    }

    @Test func urlSafeUsesDashAndUnderscore() throws {
        let bytes: [UInt8] = [0xfb, 0xff, 0xbf, 0xfb, 0xff]
        #expect(Base64.encodeUnpadded(bytes) == "+/+/+/8")
        #expect(Base64.encodeURLSafeUnpadded(bytes) == "-_-_-_8")
        #expect(try Base64.decodeURLSafe("-_-_-_8") == bytes)
        #expect(try Base64.decodeURLSafe("-_-_-_8=") == bytes)
        #expect(try Base64.decode("+/+/+/8") == bytes)
    }

    @Test func decodesEveryByteValue() throws {
        let all = [UInt8](0...255)
        let encoded = Data(all).base64EncodedString()
        #expect(try Base64.decode(encoded) == all)
        #expect(Base64.encodePadded(all) == encoded)
    }

    @Test func randomRoundTripsMatchFoundation() throws {
        for length in 0...300 {
            let bytes = SecureRandom.bytes(count: length)
            let reference = Data(bytes).base64EncodedString()
            let referenceUnpadded = String(reference.prefix { $0 != "=" })
            let referenceURLSafe = referenceUnpadded
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")

            #expect(Base64.encodePadded(bytes) == reference)
            #expect(Base64.encodeUnpadded(bytes) == referenceUnpadded)
            #expect(Base64.encodeURLSafeUnpadded(bytes) == referenceURLSafe)
            #expect(try Base64.decode(referenceUnpadded) == bytes)
            #expect(try Base64.decode(reference) == bytes)
            #expect(try Base64.decodeURLSafe(referenceURLSafe) == bytes)
        }
    }

    @Test func errorDoesNotEchoInput() {
        let error = #expect(throws: PrimitivesError.self) { try Base64.decode("c2VjcmV0a2V5!A") }
        #expect(error?.message.contains("c2VjcmV0a2V5") == false)
        #expect(error?.message.contains("offset 12") == true)
    }
}
