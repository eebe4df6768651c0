@testable import MatrixCrypto
import MatrixModels
import Testing

@Suite("Which claim on a session id decrypts a sender's event")
struct ClaimChoiceTests {
    static func claim(_ sender: String, key: String, from index: UInt32) throws -> StoredInboundGroupSession {
        StoredInboundGroupSession(
            roomID: try RoomID("!r:hs"), sessionID: "S", senderKey: key, senderUserID: try UserID(sender), firstKnownIndex: index, pickle: "p-\(key)")
    }

    @Test("the sender's claim of the envelope's sender key; else the sender's earliest (ties by key); never another user's")
    func choice() throws {
        let alice = try UserID("@alice:hs")
        let claims = [
            try Self.claim("@mallory:hs", key: "K0", from: 0),  // earliest of all, but another user's
            try Self.claim("@alice:hs", key: "K3", from: 7),
            try Self.claim("@alice:hs", key: "K2", from: 4),
            try Self.claim("@alice:hs", key: "K1", from: 4),
        ]
        // The envelope names one of the sender's keys: that claim, even if not the earliest.
        #expect(CryptoMachine.claim(for: alice, envelopeSenderKey: "K3", among: claims)?.senderKey == "K3")
        // No key, or one the sender has no claim with (Mallory's): the earliest index, ties by key.
        #expect(CryptoMachine.claim(for: alice, envelopeSenderKey: nil, among: claims)?.senderKey == "K1")
        #expect(CryptoMachine.claim(for: alice, envelopeSenderKey: "K0", among: claims)?.senderKey == "K1")
        #expect(CryptoMachine.claim(for: alice, envelopeSenderKey: "K9", among: claims.reversed())?.senderKey == "K1")
        // A sender with no claim of their own gets none: Mallory's copy never decrypts Bob's events.
        #expect(CryptoMachine.claim(for: try UserID("@bob:hs"), envelopeSenderKey: "K0", among: claims) == nil)
        #expect(CryptoMachine.claim(for: alice, envelopeSenderKey: nil, among: []) == nil)
    }
}
