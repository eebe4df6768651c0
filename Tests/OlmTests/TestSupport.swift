import Testing
import Olm

/// Fixed pickle keys for tests.
enum TestKeys {
    static let pickle = try! PickleKey(Array(repeating: 0x42, count: 32))
    static let otherPickle = try! PickleKey(Array(repeating: 0x24, count: 32))
}

/// A pair of accounts with an established Olm session each way, as most session tests need.
struct OlmPair {
    let alice: Account
    let bob: Account
    let aliceSession: Session
    let bobSession: Session

    /// Alice opens a session to Bob's one-time key; Bob answers the pre-key message and replies.
    static func establish() throws -> OlmPair {
        let alice = try Account.create(), bob = try Account.create()
        try bob.generateOneTimeKeys(count: 1)
        let otk = try #require(bob.unpublishedOneTimeKeys.first)
        bob.markKeysAsPublished()
        let aliceSession = try Session.outbound(
            account: alice, theirIdentityKey: bob.identityKeys.curve25519, theirOneTimeKey: otk.publicKey)
        let first = try aliceSession.encrypt("hello bob")
        let bobSession = try Session.inbound(
            account: bob, preKeyMessage: first, theirIdentityKey: alice.identityKeys.curve25519)
        _ = try bobSession.decrypt(first)
        try bob.removeOneTimeKeys(usedBy: bobSession)
        // Bob answers so Alice stops sending pre-key messages: both sides are fully established.
        _ = try aliceSession.decrypt(try bobSession.encrypt("hello alice"))
        return OlmPair(alice: alice, bob: bob, aliceSession: aliceSession, bobSession: bobSession)
    }
}

extension Array where Element == UInt8 {
    var utf8String: String { String(decoding: self, as: UTF8.self) }
}


/// Expects `body` to throw an ``OlmError`` whose code is one of `codes` (libolm's exact code for
/// garbage input depends on where parsing gives up; what matters is a typed error, not a crash).
func expectOlmError(
    _ codes: Set<OlmError.Code>, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected an OlmError in \(codes), got success", sourceLocation: sourceLocation)
    } catch let error as OlmError {
        #expect(codes.contains(error.code), "unexpected code \(error.code)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected an OlmError, got \(error)", sourceLocation: sourceLocation)
    }
}
