import Primitives
import Testing

func hex(_ string: String) -> [UInt8] {
    let chars = Array(string.utf8)
    return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

func toHex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

@Suite("Hashes, MACs and key derivation")
struct DigestTests {
    @Test("SHA-256 of \"abc\" and of nothing (FIPS 180-2)")
    func sha256() {
        #expect(toHex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(toHex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("HMAC-SHA256: RFC 4231 test cases 1, 2 and 6")
    func hmac() {
        #expect(toHex(HMACSHA256.authenticationCode(for: Array("Hi There".utf8), key: Array(repeating: 0x0b, count: 20)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(toHex(HMACSHA256.authenticationCode(for: Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(toHex(HMACSHA256.authenticationCode(
            for: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8), key: Array(repeating: 0xaa, count: 131)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        let code = HMACSHA256.authenticationCode(for: [1, 2, 3], key: [9])
        #expect(HMACSHA256.isValid(code, for: [1, 2, 3], key: [9]))
        #expect(!HMACSHA256.isValid(code, for: [1, 2, 4], key: [9]))
        #expect(!HMACSHA256.isValid(Array(code.dropLast()), for: [1, 2, 3], key: [9]))
    }

    @Test("HKDF-SHA256: RFC 5869 test cases 1 and 3")
    func hkdf() throws {
        #expect(toHex(try HKDFSHA256.deriveKey(
            from: Array(repeating: 0x0b, count: 22), salt: hex("000102030405060708090a0b0c"), info: hex("f0f1f2f3f4f5f6f7f8f9"),
            outputByteCount: 42))
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        #expect(toHex(try HKDFSHA256.deriveKey(from: Array(repeating: 0x0b, count: 22), salt: [], info: [], outputByteCount: 42))
            == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
        #expect(throws: PrimitivesError.self) { try HKDFSHA256.deriveKey(from: [1], salt: [], info: [], outputByteCount: 0) }
        #expect(throws: PrimitivesError.self) { try HKDFSHA256.deriveKey(from: [1], salt: [], info: [], outputByteCount: 255 * 32 + 1) }
    }

    @Test("PBKDF2-HMAC-SHA512: \"password\"/\"salt\" at 1 and 2 iterations")
    func pbkdf2() throws {
        #expect(toHex(try PBKDF2SHA512.deriveKey(from: Array("password".utf8), salt: Array("salt".utf8), iterations: 1, outputByteCount: 64))
            == "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce")
        #expect(toHex(try PBKDF2SHA512.deriveKey(from: Array("password".utf8), salt: Array("salt".utf8), iterations: 2, outputByteCount: 64))
            == "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e")
        #expect(throws: PrimitivesError.self) { try PBKDF2SHA512.deriveKey(from: [1], salt: [2], iterations: 0, outputByteCount: 32) }
    }
}

@Suite("Ciphers")
struct CipherTests {
    /// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
    @Test("AES-256-CTR: NIST SP 800-38A F.5.5, and it is its own inverse")
    func ctr() throws {
        let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
        let iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        let plaintext = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
        let ciphertext = try AES256CTR.transform(plaintext, key: key, iv: iv)
        #expect(toHex(ciphertext) == "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")
        #expect(try AES256CTR.transform(ciphertext, key: key, iv: iv) == plaintext)
        #expect(try AES256CTR.transform([], key: key, iv: iv) == [])
        #expect { try AES256CTR.transform([1], key: Array(key.prefix(16)), iv: iv) } throws: { ($0 as? PrimitivesError)?.code == .invalidKeyLength }
        #expect { try AES256CTR.transform([1], key: key, iv: [1]) } throws: { ($0 as? PrimitivesError)?.code == .invalidNonceLength }
    }

    /// McGrew–Viega GCM test case 16 (256-bit key, 60-byte plaintext, 20-byte AAD).
    @Test("AES-256-GCM: GCM spec test case 16; tampering is an authentication failure")
    func gcm() throws {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let nonce = hex("cafebabefacedbaddecaf888")
        let plaintext = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let box = try AES256GCM.seal(plaintext, key: key, nonce: nonce, authenticating: aad)
        #expect(toHex(box.ciphertext) == "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
        #expect(toHex(box.tag) == "76fc6ece0f4e1768cddf8853bb2d551b")
        #expect(try AES256GCM.open(box, key: key, authenticating: aad) == plaintext)
        #expect(try AES256GCM.open(try AES256GCM.SealedBox(combined: box.combined), key: key, authenticating: aad) == plaintext)

        func expectAuthFailure(_ box: AES256GCM.SealedBox, key: [UInt8], aad: [UInt8]) {
            #expect { try AES256GCM.open(box, key: key, authenticating: aad) } throws: { ($0 as? PrimitivesError)?.code == .authenticationFailed }
        }
        var flippedCiphertext = box
        flippedCiphertext.ciphertext[0] ^= 1
        expectAuthFailure(flippedCiphertext, key: key, aad: aad)
        var flippedTag = box
        flippedTag.tag[15] ^= 0x80
        expectAuthFailure(flippedTag, key: key, aad: aad)
        expectAuthFailure(box, key: key, aad: aad + [0])
        expectAuthFailure(box, key: Array(key.reversed()), aad: aad)
        #expect(throws: PrimitivesError.self) { try AES256GCM.SealedBox(combined: [1, 2, 3]) }
    }

    @Test("AES-256-GCM with a random nonce round trips, and two seals differ")
    func gcmRandomNonce() throws {
        let key = SecureRandom.bytes(count: 32)
        let first = try AES256GCM.seal(Array("pickle".utf8), key: key), second = try AES256GCM.seal(Array("pickle".utf8), key: key)
        #expect(first.nonce != second.nonce)
        #expect(first.ciphertext != second.ciphertext)
        #expect(try AES256GCM.open(first, key: key) == Array("pickle".utf8))
        #expect(try AES256GCM.open(try AES256GCM.seal([], key: key), key: key) == [])
    }
}

@Suite("Base64, random, comparison")
struct EncodingTests {
    /// The spec appendix "Unpadded Base64" examples (RFC 4648 §10 without padding).
    @Test("unpadded base64: the spec's examples", arguments: [
        ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
    ])
    func specExamples(plain: String, encoded: String) throws {
        #expect(Base64.encodeUnpadded(Array(plain.utf8)) == encoded)
        #expect(try Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test("padded input is accepted; padded output on request")
    func padding() throws {
        #expect(try Base64.decode("Zg==") == Array("f".utf8))
        #expect(try Base64.decode("Zm8=") == Array("fo".utf8))
        #expect(Base64.encodePadded(Array("f".utf8)) == "Zg==")
    }

    @Test("invalid base64 is refused", arguments: ["Z", "Zm9vY", "Zm9v!", "Zg=", "Z===", "Zh", "Zm9=v", "Zm-_", " Zm8"])
    func invalid(input: String) {
        #expect { try Base64.decode(input) } throws: { ($0 as? PrimitivesError)?.code == .invalidBase64 }
    }

    @Test("URL-safe alphabet uses - and _ and round trips; the standard decoder refuses it")
    func urlSafe() throws {
        let bytes: [UInt8] = [0xfb, 0xff, 0xbf, 0xfe]
        #expect(Base64.encodeUnpadded(bytes) == "+/+//g")
        #expect(Base64.encodeURLSafeUnpadded(bytes) == "-_-__g")
        #expect(try Base64.decodeURLSafe("-_-__g") == bytes)
        #expect(throws: PrimitivesError.self) { try Base64.decode("-_-__g") }
    }

    @Test("random round trips over many lengths")
    func roundTrips() throws {
        for length in 0..<70 {
            let bytes = SecureRandom.bytes(count: length)
            #expect(try Base64.decode(Base64.encodeUnpadded(bytes)) == bytes)
            #expect(try Base64.decode(Base64.encodePadded(bytes)) == bytes)
            #expect(try Base64.decodeURLSafe(Base64.encodeURLSafeUnpadded(bytes)) == bytes)
        }
    }

    @Test("secure random gives the length asked and differs between draws")
    func random() {
        #expect(SecureRandom.bytes(count: 0).isEmpty)
        #expect(SecureRandom.bytes(count: 33).count == 33)
        #expect(SecureRandom.bytes(count: 32) != SecureRandom.bytes(count: 32))
    }

    @Test("constant-time comparison and wiping")
    func compareAndWipe() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals([], []))
        var secret: [UInt8] = [9, 9, 9]
        secureWipe(&secret)
        #expect(secret == [0, 0, 0])
    }
}
