import Primitives
import Testing

@Suite("X25519 and AES-256-CBC")
struct X25519AndCBCTests {
    @Test("X25519 public keys match RFC 7748 section 6.1 (Alice and Bob)")
    func rfc7748() throws {
        let alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let bob = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        #expect(Hex.encode(try X25519.publicKey(forPrivateKey: alice)) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(Hex.encode(try X25519.publicKey(forPrivateKey: bob)) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        #expect(throws: PrimitivesError.self) { _ = try X25519.publicKey(forPrivateKey: Array(alice.dropLast())) }
    }

    @Test("AES-256-CBC matches SP 800-38A F.2.5, pads to whole blocks, round-trips, refuses bad lengths and padding")
    func cbc() throws {
        let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
        let iv = hex("000102030405060708090a0b0c0d0e0f")
        let block = hex("6bc1bee22e409f96e93d7e117393172a")
        let sealed = try AES256CBC.encrypt(block, key: key, iv: iv)
        #expect(sealed.count == 32)
        #expect(Hex.encode(Array(sealed.prefix(16))) == "f58c4c04d6e5f1ba779eabfb5f7bfbd6")
        #expect(try AES256CBC.decrypt(sealed, key: key, iv: iv) == block)
        for length in [0, 1, 15, 16, 17, 1000] {
            let plaintext = SecureRandom.bytes(count: length)
            let ciphertext = try AES256CBC.encrypt(plaintext, key: key, iv: iv)
            #expect(ciphertext.count == (length / 16 + 1) * 16)
            #expect(try AES256CBC.decrypt(ciphertext, key: key, iv: iv) == plaintext)
        }
        #expect(throws: PrimitivesError.self) { _ = try AES256CBC.decrypt(Array(sealed.dropLast()), key: key, iv: iv) }
        #expect(throws: PrimitivesError.self) { _ = try AES256CBC.decrypt([], key: key, iv: iv) }
        var tampered = sealed
        tampered[31] ^= 0xff  // the padding byte of the last block turns invalid
        #expect(throws: PrimitivesError.self) { _ = try AES256CBC.decrypt(tampered, key: key, iv: iv) }
        #expect(throws: PrimitivesError.self) { _ = try AES256CBC.encrypt(block, key: Array(key.dropLast()), iv: iv) }
        #expect(throws: PrimitivesError.self) { _ = try AES256CBC.encrypt(block, key: key, iv: Array(iv.dropLast())) }
    }
}
