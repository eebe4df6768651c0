import Foundation
import Primitives
import Testing

@Suite struct SHA512Tests {
    /// FIPS 180-2 Appendix C ("abc") and the empty message.
    @Test("known digests", arguments: [
        ("abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        ("", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    ])
    func vectors(message: String, expected: String) {
        var digest = [UInt8](repeating: 0xAA, count: SHA512.byteCount)
        Array(message.utf8).withUnsafeBytes { input in digest.withUnsafeMutableBytes { SHA512.hash(input, into: $0) } }
        #expect(digest.map { String(format: "%02x", $0) }.joined() == expected)
    }
}
