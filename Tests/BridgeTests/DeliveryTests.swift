@testable import Bridge
@testable import MatrixCrypto
import MatrixModels
import Testing

@Suite("Deliveries to the bridge logic")
struct DeliveryTests {
    let users = LocalUsers(bot: try! UserID("@bot:hs"), puppetNamespaceRegex: "@sb_.+:hs")

    @Test("the bot and the puppet namespace are local; look-alikes are not")
    func localUsers() throws {
        let bot = try UserID("@bot:hs"), puppet = try UserID("@sb_alice:hs")
        let otherServer = try UserID("@sb_alice:hs.evil"), prefixed = try UserID("@xsb_alice:hs"), remote = try UserID("@alice:hs")
        #expect(users.isLocal(bot) && !users.isPuppet(bot))
        #expect(users.isPuppet(puppet) && users.isLocal(puppet))
        #expect(!users.isLocal(otherServer) && !users.isLocal(prefixed) && !users.isLocal(remote))
    }

    @Test("remembered answers stay right: asked again, by copies, and past the memo's capacity")
    func localUsersRemembered() throws {
        let copy = users
        let puppet = try UserID("@sb_alice:hs"), remote = try UserID("@alice:hs")
        for _ in 0..<3 {
            #expect(users.isPuppet(puppet) && copy.isPuppet(puppet))
            #expect(!users.isLocal(remote) && !copy.isLocal(remote))
        }
        // More distinct users than the memo holds: it starts over, the answers do not change.
        for index in 0..<(PuppetAnswers.capacity + 10) {
            let user = try UserID(index.isMultiple(of: 2) ? "@sb_\(index):hs" : "@u\(index):hs")
            #expect(users.isPuppet(user) == index.isMultiple(of: 2))
        }
        #expect(users.isPuppet(puppet) && !users.isPuppet(remote))
    }

    @Test("plain events and decrypted ones are delivered with their facts; local senders and parked events are not")
    func collect() throws {
        let transaction = try AppserviceTransaction.decode(Array("""
            {"events": [
              {"type": "m.room.message", "event_id": "$plain", "room_id": "!r:hs", "sender": "@alice:hs", "origin_server_ts": 5,
               "content": {"msgtype": "m.text", "body": "hi"}},
              {"type": "m.room.member", "event_id": "$member", "room_id": "!r:hs", "sender": "@alice:hs", "state_key": "@alice:hs",
               "content": {"membership": "join"}},
              {"type": "m.room.message", "event_id": "$own", "room_id": "!r:hs", "sender": "@sb_puppet:hs", "content": {"body": "mine"}},
              {"type": "m.room.encrypted", "event_id": "$enc", "room_id": "!r:hs", "sender": "@alice:hs", "content": {}}
            ]}
            """.utf8))
        var step = CryptoStep()
        step.roomEvents = [
            RoomEventOutcome(
                eventID: try EventID("$enc"), roomID: try RoomID("!r:hs"), sender: try UserID("@alice:hs"),
                result: .success(MegolmDecryption.Decrypted(type: "m.room.message", content: ["body": "secret"], sessionID: "S", messageIndex: 0)),
                senderKey: "CURVE", trust: .crossSigned, originServerTimestamp: 7, claimedDeviceID: "ALICEDEV"),
            RoomEventOutcome(
                eventID: try EventID("$untrusted"), roomID: try RoomID("!r:hs"), sender: try UserID("@alice:hs"),
                result: .failure(.untrustedDevice(.unknownDevice)), senderKey: "OTHER", trust: .unknownDevice),
            RoomEventOutcome(
                eventID: try EventID("$replayed"), roomID: try RoomID("!r:hs"), sender: try UserID("@alice:hs"),
                result: .failure(.replay(sessionID: "S", messageIndex: 0, firstEventID: "$enc")), senderKey: nil),
            RoomEventOutcome(
                eventID: try EventID("$puppet-enc"), roomID: try RoomID("!r:hs"), sender: try UserID("@sb_puppet:hs"),
                result: .success(MegolmDecryption.Decrypted(type: "m.room.message", content: ["body": "own"], sessionID: "T", messageIndex: 0)),
                senderKey: "P"),
        ]
        let deliveries = Delivery.collect(transaction, step: step, users: users)
        #expect(deliveries.map(\.eventID.rawValue) == ["$plain", "$member", "$enc", "$untrusted", "$replayed"])
        let plain = deliveries[0].json, member = deliveries[1].json, decrypted = deliveries[2].json, failed = deliveries[4].json
        let untrusted = deliveries[3].json
        #expect(plain["content"]?["body"] == "hi" && plain["encryption"]?["encrypted"] == false && plain["origin_server_ts"] == 5)
        #expect(member["state_key"] == "@alice:hs")
        #expect(decrypted["type"] == "m.room.message" && decrypted["content"]?["body"] == "secret" && decrypted["origin_server_ts"] == 7)
        #expect(decrypted["encryption"] == [
            "encrypted": true, "decrypted": true, "session_id": "S", "sender_key": "CURVE", "sender_device": "ALICEDEV",
            "trust": "cross_signed",
        ])
        #expect(untrusted["type"] == "m.room.encrypted" && untrusted["content"] == [:] && untrusted["encryption"]?["trust"] == "unknown_device")
        #expect(untrusted["encryption"]?["error"]?["code"] == "untrusted_device" && untrusted["encryption"]?["error"]?["reason"] == "unknown_device")
        #expect(failed["type"] == "m.room.encrypted" && failed["content"] == [:])
        #expect(failed["encryption"]?["decrypted"] == false && failed["encryption"]?["error"]?["code"] == "replay")
    }
}

@Suite("One-time key gauge")
struct OneTimeKeyGaugeTests {
    @Test("the last reported count per device counts; an empty map means zero keys")
    func low() async throws {
        let gauge = OneTimeKeyGauge()
        let bot = try UserID("@bot:hs"), puppet = try UserID("@sb_a:hs")
        let device = try DeviceID("SEALBRIDGE")
        await gauge.record([bot: [device: ["signed_curve25519": 49]], puppet: [device: ["signed_curve25519": 3]]])
        #expect(await gauge.low(below: 13) == 1)
        await gauge.record([puppet: [device: ["signed_curve25519": 50]]])
        #expect(await gauge.low(below: 13) == 0)
        await gauge.record([bot: [device: [:]]])
        #expect(await gauge.low(below: 13) == 1)
    }

    @Test("Synapse's hidden cross-signing-key devices (named by their public key, no one-time keys) are not counted")
    func crossSigningKeysAreNotDevices() async throws {
        let gauge = OneTimeKeyGauge()
        let bot = try UserID("@bot:hs")
        let master = try DeviceID(String(repeating: "A", count: 43)), selfSigning = try DeviceID(String(repeating: "B", count: 43))
        await gauge.record([bot: [try DeviceID("SEALBRIDGE"): ["signed_curve25519": 50], master: [:], selfSigning: ["signed_curve25519": 0]]])
        #expect(await gauge.low(below: 13) == 0)
    }
}
