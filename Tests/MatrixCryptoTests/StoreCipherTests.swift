import MatrixCrypto
import Olm
import Testing

@Suite("Keys at rest")
struct StoreCipherTests {
    let secret = "an-operator-secret-of-more-than-32-bytes-AAAA"

    @Test("the same secret derives the same pickle key; another secret cannot read the pickle")
    func pickleKeyDerivation() throws {
        let account = try Account.create()
        let pickle = try account.pickle(key: try StoreCipher(secret: secret).pickleKey)
        #expect(try Account.unpickle(pickle, key: try StoreCipher(secret: secret).pickleKey).identityKeys == account.identityKeys)
        #expect(throws: OlmError.self) { try Account.unpickle(pickle, key: try StoreCipher(secret: secret + "x").pickleKey) }
        #expect(!pickle.contains(account.identityKeys.curve25519))
    }

    @Test("sealed secrets open only with the same secret and context, and not after tampering")
    func sealing() throws {
        let cipher = try StoreCipher(secret: secret)
        let seed = PkSigning.generateSeed()
        let sealed = try cipher.seal(seed, context: "cross-signing master @bot:hs")
        #expect(!sealed.containsSubsequence(seed))
        #expect(try cipher.open(sealed, context: "cross-signing master @bot:hs") == seed)
        func refused(_ body: () throws -> [UInt8]) {
            #expect { _ = try body() } throws: { ($0 as? CryptoError)?.code == .storeCorrupted }
        }
        refused { try cipher.open(sealed, context: "cross-signing master @other:hs") }
        refused { try StoreCipher(secret: secret + "x").open(sealed, context: "cross-signing master @bot:hs") }
        var altered = sealed
        altered[altered.count / 2] ^= 1
        refused { try cipher.open(altered, context: "cross-signing master @bot:hs") }
        refused { try cipher.open([1, 2, 3], context: "x") }
    }

    @Test("a short secret is refused")
    func shortSecret() {
        #expect { try StoreCipher(secret: "short") } throws: { ($0 as? CryptoError)?.code == .invalidSecret }
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}
