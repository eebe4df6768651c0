import Foundation
@testable import Olm
import TestSupport
import Testing

/// Olm and Megolm messages cross between our libolm wrapper and vodozemac (an independent Rust
/// implementation, via its Python bindings) in both directions.
///
/// The peer is `Tests/Interop/vodozemac_peer.py`, run with the Python that `scripts/test` prepares in
/// `.venv` (or `SEALBRIDGE_INTEROP_PYTHON`). A missing interpreter fails the test: it is not optional.
@Suite("Interoperability with vodozemac")
struct InteropTests {
    @Test("Olm both ways, Megolm both ways, signatures both ways, libolm pickle readable by vodozemac")
    func crossImplementation() throws {
        let peer = try PythonPeer(script: "vodozemac_peer.py", name: "vodozemac")
        let swift = try Account.create()
        try swift.generateOneTimeKeys(count: 1)
        let otk = try #require(swift.unpublishedOneTimeKeys.first)
        swift.markKeysAsPublished()

        let started = try peer.call([
            "command": "start",
            "swift_curve25519": swift.identityKeys.curve25519,
            "swift_one_time_key": otk.publicKey,
        ])

        // vodozemac → libolm: a pre-key message, then a second message in the same session.
        let olm = try #require(started["olm_messages"] as? [[String: Any]])
        let first = try OlmMessage(type: try #require(olm[0]["type"] as? Int), ciphertext: try #require(olm[0]["body"] as? String))
        #expect(first.kind == .preKey)
        let vzCurve = try #require(started["vz_curve25519"] as? String)
        let inbound = try Session.inbound(account: swift, preKeyMessage: first, theirIdentityKey: vzCurve)
        #expect(try inbound.decrypt(first).utf8String == "vodozemac olm 0")
        try swift.removeOneTimeKeys(usedBy: inbound)
        let second = try OlmMessage(type: try #require(olm[1]["type"] as? Int), ciphertext: try #require(olm[1]["body"] as? String))
        #expect(inbound.matchesInbound(second, theirIdentityKey: vzCurve) || second.kind == .normal)
        #expect(try inbound.decrypt(second).utf8String == "vodozemac olm 1")

        // vodozemac → libolm: Megolm with the vodozemac session key.
        let groupKey = try #require(started["megolm_session_key"] as? String)
        let group = try InboundGroupSession(sessionKey: groupKey)
        #expect(group.sessionID == started["megolm_session_id"] as? String)
        let megolm = try #require(started["megolm_messages"] as? [String])
        for (index, ciphertext) in megolm.enumerated() {
            let decrypted = try group.decrypt(ciphertext)
            #expect(decrypted.plaintext.utf8String == "vodozemac megolm \(index)")
            #expect(decrypted.messageIndex == UInt32(index))
        }
        // What vodozemac writes (Element X, Element Web's Rust crypto) is in the shape MegolmReceiver
        // decides itself: those messages do not fall back to libolm.
        let receiver = try #require(try InboundGroupSession(sessionKey: groupKey).makeReceiver())
        for (index, ciphertext) in megolm.enumerated() {
            guard case .decrypted(let decrypted) = receiver.decrypt(ciphertext) else {
                Issue.record("vodozemac's Megolm message \(index) was left to libolm")
                continue
            }
            #expect(decrypted.plaintext.utf8String == "vodozemac megolm \(index)")
        }

        // vodozemac's Ed25519 signature verifies here.
        let signed = try #require(started["signed_message"] as? String)
        try Utility.verifyEd25519(
            key: try #require(started["vz_ed25519"] as? String),
            message: Array(try #require(Data(base64Encoded: padded(signed)))),
            signature: try #require(started["signature"] as? String))

        // libolm → vodozemac: a reply in the inbound session, a new session from vodozemac's OTK,
        // Megolm messages, a signature, and a libolm pickle of an inbound group session.
        let reply = try inbound.encrypt("libolm reply")
        let outbound = try Session.outbound(
            account: swift, theirIdentityKey: vzCurve,
            theirOneTimeKey: try #require(started["vz_one_time_key"] as? String))
        let prekey = try outbound.encrypt("libolm initiated")
        let ours = try OutboundGroupSession.create()
        let ourKey = ours.sessionKey
        let ourMessages = try (0..<3).map { try ours.encrypt("libolm megolm \($0)") }
        let ourInbound = try InboundGroupSession(sessionKey: ourKey)
        let pickleKey: [UInt8] = Array(repeating: 7, count: 32)
        let signedBySwift = "signed by libolm"

        let finished = try peer.call([
            "command": "finish",
            "state": try #require(started["state"]),
            "olm_reply": ["type": reply.kind.rawValue, "body": reply.ciphertext],
            "swift_prekey": ["type": prekey.kind.rawValue, "body": prekey.ciphertext],
            "swift_curve25519": swift.identityKeys.curve25519,
            "swift_ed25519": swift.identityKeys.ed25519,
            "swift_signed_message": Data(signedBySwift.utf8).base64EncodedString(),
            "swift_signature": swift.sign(signedBySwift),
            "megolm_session_key": ourKey,
            "megolm_messages": ourMessages,
            "libolm_inbound_pickle": try ourInbound.pickle(key: try PickleKey(pickleKey)),
            "libolm_pickle_key": Data(pickleKey).base64EncodedString(),
        ])
        #expect(finished["olm_reply"] as? String == "libolm reply")
        #expect(finished["swift_initiated"] as? String == "libolm initiated")
        #expect(finished["signature_verified"] as? Bool == true)
        #expect(finished["tampered_signature_rejected"] as? Bool == true)
        #expect(finished["megolm_session_id"] as? String == ours.sessionID)
        let theirView = try #require(finished["megolm"] as? [[String: Any]])
        #expect(theirView.count == 3)
        for (index, entry) in theirView.enumerated() {
            #expect(entry["plaintext"] as? String == "libolm megolm \(index)")
            #expect(entry["index"] as? Int == index)
        }
        #expect(finished["libolm_pickle_session_id"] as? String == ours.sessionID)
        #expect(finished["libolm_pickle_decrypt"] as? String == "libolm megolm 2")
    }
}

func padded(_ base64: String) -> String {
    base64 + String(repeating: "=", count: (4 - base64.count % 4) % 4)
}
