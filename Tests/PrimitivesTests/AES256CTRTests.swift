import Primitives
import Testing

/// NIST SP 800-38A, appendix F.5.5 (CTR-AES256.Encrypt) and F.5.6 (Decrypt).
@Suite struct AES256CTRTests {
    let key = hex("603deb1015ca71be2b73aef0857d7781 1f352c073b6108d72d9810a30914dff4")
    let counter = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    let plaintext = hex("""
        6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
        30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710
        """)
    let ciphertext = hex("""
        601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
        2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6
        """)

    @Test func encryptsNISTVector() throws {
        #expect(try AES256CTR.transform(plaintext, key: key, iv: counter) == ciphertext)
    }

    @Test func decryptsNISTVector() throws {
        #expect(try AES256CTR.transform(ciphertext, key: key, iv: counter) == plaintext)
    }

    @Test func partialBlockIsPrefixOfKeystream() throws {
        let partial = Array(plaintext.prefix(21))
        #expect(try AES256CTR.transform(partial, key: key, iv: counter) == Array(ciphertext.prefix(21)))
    }

    @Test func emptyInputGivesEmptyOutput() throws {
        #expect(try AES256CTR.transform([], key: key, iv: counter) == [])
    }

    @Test func rejectsWrongKeyLength() {
        let error = #expect(throws: PrimitivesError.self) {
            try AES256CTR.transform(plaintext, key: Array(key.prefix(16)), iv: counter)
        }
        #expect(error?.code == .invalidKeyLength)
    }

    @Test func rejectsWrongIVLength() {
        let error = #expect(throws: PrimitivesError.self) {
            try AES256CTR.transform(plaintext, key: key, iv: Array(counter.prefix(12)))
        }
        #expect(error?.code == .invalidNonceLength)
    }
}
