import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// A remote sender built on the raw Olm API, playing a client that shares a room key with our device.
struct RemoteSender {
    let userID: UserID
    let deviceID: DeviceID
    let account = try! Account.create()
    let group = try! OutboundGroupSession.create()

    init(userID: String = "@alice:localhost", deviceID: String = "ALICEPHONE") {
        self.userID = try! UserID(userID)
        self.deviceID = try! DeviceID(deviceID)
    }

    var deviceKeys: JSONValue {
        let device = deviceID.rawValue
        let keys: JSONValue = [
            "user_id": .string(userID.rawValue), "device_id": .string(device),
            "algorithms": [.string(EncryptionAlgorithm.olm), .string(EncryptionAlgorithm.megolm)],
            "keys": [
                .init(stringLiteral: "curve25519:\(device)"): .string(account.identityKeys.curve25519),
                .init(stringLiteral: "ed25519:\(device)"): .string(account.identityKeys.ed25519),
            ],
        ]
        return try! SignedJSON.sign(keys, userID: userID, keyID: "ed25519:\(device)", with: account)
    }

    /// An `m.olm.v1.curve25519-aes-sha2` envelope for `recipient` carrying `payload` (fields added as a client would).
    func envelope(_ session: Session, to recipient: LocalDevice, type: String, content: JSONValue, overrides: [String: JSONValue] = [:]) throws -> JSONValue {
        var payload: [String: JSONValue] = [
            "type": .string(type), "content": content, "sender": .string(userID.rawValue),
            "recipient": .string(recipient.userID.rawValue), "recipient_keys": ["ed25519": .string(recipient.account.identityKeys.ed25519)],
            "keys": ["ed25519": .string(account.identityKeys.ed25519)],
        ]
        for (key, value) in overrides { payload[key] = value }
        let message = try session.encrypt(JSONValue.object(payload).serialized())
        return [
            "algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(account.identityKeys.curve25519),
            "ciphertext": [recipient.account.identityKeys.curve25519: ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]],
        ]
    }

    var roomKeyContent: JSONValue { roomKeyContent(sessionKey: group.sessionKey) }

    /// An `m.room_key` content for this sender's session, or for any `sessionKey` it re-shares.
    func roomKeyContent(sessionKey: String, sessionID: String? = nil) -> JSONValue {
        ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": "!room", "session_id": .string(sessionID ?? group.sessionID),
         "session_key": .string(sessionKey)]
    }

    func megolmEvent(_ body: String, room: String = "!room") throws -> JSONValue {
        let payload: JSONValue = ["type": "m.room.message", "room_id": .string(room), "content": ["msgtype": "m.text", "body": .string(body)]]
        return ["algorithm": .string(EncryptionAlgorithm.megolm), "session_id": .string(group.sessionID), "ciphertext": .string(try group.encrypt(payload.serialized()))]
    }
}

/// Our side: a puppet's device.
struct LocalDevice {
    let userID = try! UserID("@sealbridge_7:localhost")
    let account: Account

    init() throws {
        account = try Account.create()
        try account.generateOneTimeKeys(count: 2)
        try account.generateFallbackKey()
    }

    var oneTimeKey: String { account.unpublishedOneTimeKeys[0].publicKey }
}

@Suite("Decrypting to-device and room messages")
struct DecryptionTests {
    @Test("a shared room key arrives by Olm, passes every check, and decrypts the room's Megolm events")
    func roomKeyThenMessages() throws {
        let alice = RemoteSender(), puppet = try LocalDevice()
        let oneTimeKeysBefore = puppet.account.unpublishedOneTimeKeys.count
        let session = try Session.outbound(account: alice.account, theirIdentityKey: puppet.account.identityKeys.curve25519, theirOneTimeKey: puppet.oneTimeKey)
        let envelope = try alice.envelope(session, to: puppet, type: "m.room_key", content: alice.roomKeyContent)

        let decrypted = try OlmDecryption.decrypt(content: envelope, sender: alice.userID, account: puppet.account, sessions: [])
        #expect(decrypted.createdSession)
        #expect(decrypted.senderKey == alice.account.identityKeys.curve25519)
        #expect(puppet.account.unpublishedOneTimeKeys.count == oneTimeKeysBefore - 1)

        let device = try VerifiedDeviceKeys(alice.deviceKeys, expectedUser: alice.userID)
        #expect(device.curve25519 == decrypted.senderKey)
        try OlmDecryption.validate(decrypted.payload, sender: alice.userID, recipient: puppet.userID,
                                   recipientEd25519: puppet.account.identityKeys.ed25519, senderEd25519: device.ed25519)

        let roomKey = try RoomKey(content: try #require(decrypted.payload["content"]))
        let inbound = try roomKey.inboundSession()
        var ledger = ReplayLedger()
        for n in 0..<3 {
            let event = try MegolmDecryption.Envelope(content: try alice.megolmEvent("hello \(n)"))
            let message = try MegolmDecryption.decrypt(event, eventID: try EventID("$e\(n)"), roomID: try RoomID("!room"), session: inbound, ledger: &ledger)
            #expect(message.type == "m.room.message")
            #expect(message.content["body"]?.stringValue == "hello \(n)")
            #expect(message.messageIndex == UInt32(n))
        }
        #expect(ledger.added.count == 3)

        // The next message in the same Olm session is a normal message, decrypted by the stored session.
        _ = try session.decrypt(try puppet.replyTo(decrypted.session))
        let again = try OlmDecryption.decrypt(content: try alice.envelope(session, to: puppet, type: "m.dummy", content: [:]),
                                              sender: alice.userID, account: puppet.account, sessions: [decrypted.session])
        #expect(!again.createdSession)
    }

    @Test("replays are refused; the same event decrypted twice is not a replay")
    func replay() throws {
        let alice = RemoteSender()
        let inbound = try InboundGroupSession(sessionKey: alice.group.sessionKey)
        let event = try MegolmDecryption.Envelope(content: try alice.megolmEvent("once"))
        var ledger = ReplayLedger()
        let room = try RoomID("!room")
        _ = try MegolmDecryption.decrypt(event, eventID: try EventID("$original"), roomID: room, session: inbound, ledger: &ledger)
        _ = try MegolmDecryption.decrypt(event, eventID: try EventID("$original"), roomID: room, session: inbound, ledger: &ledger)
        #expect(throws: DecryptionFailure.replay(sessionID: alice.group.sessionID, messageIndex: 0, firstEventID: "$original")) {
            try MegolmDecryption.decrypt(event, eventID: try EventID("$copy"), roomID: room, session: inbound, ledger: &ledger)
        }
        // A ledger loaded from storage refuses the replay just the same.
        var reloaded = ReplayLedger(entries: ledger.entries)
        #expect(throws: DecryptionFailure.self) {
            try MegolmDecryption.decrypt(event, eventID: try EventID("$copy"), roomID: room, session: inbound, ledger: &reloaded)
        }
    }

    @Test("a payload for another room, an index before the key, and a stranger's session are typed failures")
    func megolmFailures() throws {
        let alice = RemoteSender()
        var ledger = ReplayLedger()
        let early = try MegolmDecryption.Envelope(content: try alice.megolmEvent("before the key"))
        let inbound = try InboundGroupSession(sessionKey: alice.group.sessionKey)
        #expect(throws: DecryptionFailure.unknownMessageIndex(sessionID: alice.group.sessionID, firstKnownIndex: 1)) {
            try MegolmDecryption.decrypt(early, eventID: try EventID("$a"), roomID: try RoomID("!room"), session: inbound, ledger: &ledger)
        }
        let elsewhere = try MegolmDecryption.Envelope(content: try alice.megolmEvent("moved", room: "!other"))
        #expect(throws: DecryptionFailure.roomMismatch(expected: "!room", found: "!other")) {
            try MegolmDecryption.decrypt(elsewhere, eventID: try EventID("$b"), roomID: try RoomID("!room"), session: inbound, ledger: &ledger)
        }
        #expect(ledger.added.isEmpty)
        #expect(throws: DecryptionFailure.unsupportedAlgorithm("m.megolm.v2")) {
            try MegolmDecryption.Envelope(content: ["algorithm": "m.megolm.v2", "session_id": "x", "ciphertext": "y"])
        }
    }

    @Test("payload checks: wrong sender, recipient, recipient key or signing key are refused")
    func payloadChecks() throws {
        let alice = RemoteSender(), puppet = try LocalDevice(), mallory = RemoteSender()
        let session = try Session.outbound(account: alice.account, theirIdentityKey: puppet.account.identityKeys.curve25519, theirOneTimeKey: puppet.oneTimeKey)
        let cases: [[String: JSONValue]] = [
            ["sender": "@mallory:localhost"], ["recipient": "@someone:localhost"],
            ["recipient_keys": ["ed25519": .string(mallory.account.identityKeys.ed25519)]],
            ["keys": ["ed25519": .string(mallory.account.identityKeys.ed25519)]],
        ]
        var sessions: [Session] = []
        for overrides in cases {
            let envelope = try alice.envelope(session, to: puppet, type: "m.dummy", content: [:], overrides: overrides)
            let decrypted = try OlmDecryption.decrypt(content: envelope, sender: alice.userID, account: puppet.account, sessions: sessions)
            sessions = [decrypted.session]
            #expect(throws: DecryptionFailure.self) {
                try OlmDecryption.validate(decrypted.payload, sender: alice.userID, recipient: puppet.userID,
                                           recipientEd25519: puppet.account.identityKeys.ed25519, senderEd25519: alice.account.identityKeys.ed25519)
            }
        }
        // An unknown sender device cannot be verified at all.
        let envelope = try alice.envelope(session, to: puppet, type: "m.dummy", content: [:])
        let decrypted = try OlmDecryption.decrypt(content: envelope, sender: alice.userID, account: puppet.account, sessions: sessions)
        #expect { try OlmDecryption.validate(decrypted.payload, sender: alice.userID, recipient: puppet.userID,
                                              recipientEd25519: puppet.account.identityKeys.ed25519, senderEd25519: nil) }
            throws: { if case .unverifiedSender = $0 as? DecryptionFailure { true } else { false } }
    }

    @Test("a normal message no session decrypts is reported as a wedged session; not-for-us and garbage are typed")
    func wedgedAndMalformed() throws {
        let alice = RemoteSender(), puppet = try LocalDevice()
        let session = try Session.outbound(account: alice.account, theirIdentityKey: puppet.account.identityKeys.curve25519, theirOneTimeKey: puppet.oneTimeKey)
        let first = try OlmDecryption.decrypt(content: try alice.envelope(session, to: puppet, type: "m.dummy", content: [:]),
                                              sender: alice.userID, account: puppet.account, sessions: [])
        _ = try session.decrypt(try puppet.replyTo(first.session))  // now Alice sends normal messages
        let normal = try alice.envelope(session, to: puppet, type: "m.dummy", content: [:])
        #expect(throws: DecryptionFailure.wedgedSession(sender: alice.userID, senderKey: alice.account.identityKeys.curve25519)) {
            try OlmDecryption.decrypt(content: normal, sender: alice.userID, account: puppet.account, sessions: [])
        }
        let other = try LocalDevice()
        #expect(throws: DecryptionFailure.notForThisDevice) {
            try OlmDecryption.decrypt(content: normal, sender: alice.userID, account: other.account, sessions: [])
        }
        #expect(throws: DecryptionFailure.self) {
            try OlmDecryption.decrypt(content: ["algorithm": .string(EncryptionAlgorithm.olm)], sender: alice.userID, account: puppet.account, sessions: [])
        }
    }

    @Test("device keys: a valid self-signature is accepted; altered keys or another user's are refused; dehydrated is flagged")
    func deviceKeys() throws {
        let alice = RemoteSender()
        let verified = try VerifiedDeviceKeys(alice.deviceKeys, expectedUser: alice.userID)
        #expect(verified.ed25519 == alice.account.identityKeys.ed25519)
        #expect(!verified.dehydrated)
        guard case .object(var members) = alice.deviceKeys else { Issue.record("not an object"); return }
        members["keys"] = ["curve25519:ALICEPHONE": .string(try Account.create().identityKeys.curve25519), "ed25519:ALICEPHONE": .string(alice.account.identityKeys.ed25519)]
        #expect(throws: DecryptionFailure.self) { try VerifiedDeviceKeys(.object(members), expectedUser: alice.userID) }
        #expect(throws: DecryptionFailure.self) { try VerifiedDeviceKeys(alice.deviceKeys, expectedUser: try UserID("@bob:localhost")) }
        var dehydrated = alice.deviceKeys.objectValue!
        dehydrated["dehydrated"] = true
        let signed = try SignedJSON.sign(.object(dehydrated.filter { $0.key != "signatures" }), userID: alice.userID, keyID: "ed25519:ALICEPHONE", with: alice.account)
        #expect(try VerifiedDeviceKeys(signed, expectedUser: alice.userID).dehydrated)
    }

    @Test("a room key whose session id does not match its key is refused")
    func plantedRoomKey() throws {
        let alice = RemoteSender(), other = try OutboundGroupSession.create()
        let planted = try RoomKey(content: ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": "!room",
                                            "session_id": .string(other.sessionID), "session_key": .string(alice.group.sessionKey)])
        #expect(throws: DecryptionFailure.self) { try planted.inboundSession() }
    }
}

extension LocalDevice {
    /// An Olm reply from our side, so the remote session leaves pre-key mode.
    func replyTo(_ session: Session) throws -> OlmMessage { try session.encrypt("{}") }
}

@Suite("Megolm ciphertext header")
struct MegolmHeaderTests {
    @Test("the message index read from the clear header matches the index libolm decrypts, past one varint byte")
    func indexFromHeader() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        for expected in 0..<200 {
            let ciphertext = try outbound.encrypt("message \(expected)")
            #expect(MegolmDecryption.messageIndex(of: ciphertext) == UInt32(expected))
            if expected % 50 == 0 || expected == 128 { #expect(try inbound.decrypt(ciphertext).messageIndex == UInt32(expected)) }
        }
        #expect(MegolmDecryption.messageIndex(of: "not base64 at all!!") == nil)
        #expect(MegolmDecryption.messageIndex(of: "AwgA") == nil)
    }
}
