import Primitives
import Testing

/// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 16 (256-bit keys),
/// plus tamper tests: any change must fail as `.authenticationFailed`, never crash or return data.
@Suite struct AES256GCMTests {
    // Test case 16: 60-byte plaintext, 20-byte AAD.
    let key = hex("feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308")
    let nonce = hex("cafebabefacedbaddecaf888")
    let plaintext = hex("""
        d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72
        1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39
        """)
    let aad = hex("feedfacedeadbeeffeedfacedeadbeef abaddad2")
    let ciphertext = hex("""
        522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa
        8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662
        """)
    let tag = hex("76fc6ece0f4e1768cddf8853bb2d551b")

    var vectorBox: AES256GCM.SealedBox {
        get throws { try AES256GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag) }
    }

    @Test func sealsTestCase16() throws {
        let box = try AES256GCM.seal(plaintext, key: key, nonce: nonce, authenticating: aad)
        #expect(box.nonce == nonce)
        #expect(box.ciphertext == ciphertext)
        #expect(box.tag == tag)
        #expect(box.combined == nonce + ciphertext + tag)
    }

    @Test func opensTestCase16() throws {
        #expect(try AES256GCM.open(vectorBox, key: key, authenticating: aad) == plaintext)
    }

    @Test func sealsTestCase13EmptyPlaintext() throws {
        let box = try AES256GCM.seal([], key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12))
        #expect(box.ciphertext == [])
        #expect(box.tag == hex("530f8afbc74536b9a963b4f1c4cb738b"))
        #expect(try AES256GCM.open(box, key: [UInt8](repeating: 0, count: 32)) == [])
    }

    @Test(arguments: [0, 7, 250, 479])
    func flippedCiphertextBitFailsAuthentication(bit: Int) throws {
        let box = try AES256GCM.SealedBox(nonce: nonce, ciphertext: flippingBit(bit, of: ciphertext), tag: tag)
        let error = #expect(throws: PrimitivesError.self) { try AES256GCM.open(box, key: key, authenticating: aad) }
        #expect(error?.code == .authenticationFailed)
    }

    @Test(arguments: [0, 64, 127])
    func flippedTagBitFailsAuthentication(bit: Int) throws {
        let box = try AES256GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: flippingBit(bit, of: tag))
        let error = #expect(throws: PrimitivesError.self) { try AES256GCM.open(box, key: key, authenticating: aad) }
        #expect(error?.code == .authenticationFailed)
    }

    @Test func flippedNonceBitFailsAuthentication() throws {
        let box = try AES256GCM.SealedBox(nonce: flippingBit(3, of: nonce), ciphertext: ciphertext, tag: tag)
        let error = #expect(throws: PrimitivesError.self) { try AES256GCM.open(box, key: key, authenticating: aad) }
        #expect(error?.code == .authenticationFailed)
    }

    @Test func wrongAssociatedDataFailsAuthentication() throws {
        for wrong in [[], flippingBit(0, of: aad), aad + [0]] {
            let error = #expect(throws: PrimitivesError.self) { try AES256GCM.open(vectorBox, key: key, authenticating: wrong) }
            #expect(error?.code == .authenticationFailed)
        }
    }

    @Test func wrongKeyFailsAuthentication() throws {
        let error = #expect(throws: PrimitivesError.self) {
            try AES256GCM.open(vectorBox, key: flippingBit(255, of: key), authenticating: aad)
        }
        #expect(error?.code == .authenticationFailed)
    }

    @Test func randomNonceSealRoundTripsAndVaries() throws {
        let first = try AES256GCM.seal(plaintext, key: key, authenticating: aad)
        let second = try AES256GCM.seal(plaintext, key: key, authenticating: aad)
        #expect(first.nonce.count == 12)
        #expect(first.nonce != second.nonce)
        #expect(first.ciphertext != second.ciphertext)
        #expect(try AES256GCM.open(first, key: key, authenticating: aad) == plaintext)
        #expect(try AES256GCM.open(second, key: key, authenticating: aad) == plaintext)
    }

    @Test func combinedRoundTrips() throws {
        let box = try AES256GCM.SealedBox(combined: nonce + ciphertext + tag)
        #expect(box == (try vectorBox))
        #expect(box.combined == nonce + ciphertext + tag)
        let empty = try AES256GCM.SealedBox(combined: [UInt8](repeating: 1, count: 28))
        #expect(empty.ciphertext == [])
    }

    @Test func combinedTooShortIsRejected() {
        let error = #expect(throws: PrimitivesError.self) { try AES256GCM.SealedBox(combined: [UInt8](repeating: 0, count: 27)) }
        #expect(error?.code == .invalidInput)
    }

    @Test func rejectsBadLengths() {
        let shortKey = #expect(throws: PrimitivesError.self) { try AES256GCM.seal(plaintext, key: Array(key.prefix(31)), nonce: nonce) }
        #expect(shortKey?.code == .invalidKeyLength)
        let shortNonce = #expect(throws: PrimitivesError.self) { try AES256GCM.seal(plaintext, key: key, nonce: hex("cafebabefacedbaddecaf8")) }
        #expect(shortNonce?.code == .invalidNonceLength)
        let openKey = #expect(throws: PrimitivesError.self) { try AES256GCM.open(vectorBox, key: Array(key.prefix(16))) }
        #expect(openKey?.code == .invalidKeyLength)
        let shortTag = #expect(throws: PrimitivesError.self) { try AES256GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: Array(tag.prefix(12))) }
        #expect(shortTag?.code == .invalidInput)
    }

    @Test func errorMessagesDoNotContainKeyMaterial() {
        let error = #expect(throws: PrimitivesError.self) { try AES256GCM.open(vectorBox, key: flippingBit(0, of: key)) }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("authenticationFailed: "))
        #expect(!text.lowercased().contains("feffe992"))
        #expect(!text.contains(Base64.encodeUnpadded(key)))
    }
}
