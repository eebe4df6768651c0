import Foundation
import MatrixCrypto
import MatrixModels
import Testing

/// Member events are handled under the crypto lock: a transaction of them must cost the store a few
/// batched reads, not one to three each, and give the answers the single reads gave.
@Suite("Room state reads: batched per transaction")
struct RoomStateReadsTests {
    let bot: UserID
    let puppets: [UserID]
    let store = ForgetfulStore()
    let machine: CryptoMachine

    init() async throws {
        bot = try UserID("@bot:bridge.test")
        puppets = try (0..<40).map { try UserID("@puppet_\($0):bridge.test") }
        machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "s", count: 44)))
        // Accounts as provisioning leaves them (the invite check only asks whether one exists).
        var accounts = CryptoChanges()
        for (index, puppet) in puppets.enumerated() {
            accounts.accounts.append(StoredAccount(userID: puppet, deviceID: try DeviceID("P\(index)"), pickle: "x", deviceKeysUploaded: true))
        }
        try await store.save(accounts)
    }

    func state(_ room: String, _ type: String, sender: UserID, stateKey: String, content: JSONValue, id: String) -> JSONValue {
        ["type": .string(type), "room_id": .string(room), "sender": .string(sender.rawValue), "state_key": .string(stateKey),
         "event_id": .string(id), "origin_server_ts": 1, "content": content]
    }

    func member(_ room: String, _ user: UserID, _ membership: String, by sender: UserID? = nil, id: String) -> JSONValue {
        state(room, "m.room.member", sender: sender ?? user, stateKey: user.rawValue, content: ["membership": .string(membership)], id: id)
    }

    func encryption(_ room: String, id: String) -> JSONValue {
        state(room, "m.room.encryption", sender: bot, stateKey: "", content: ["algorithm": .string(EncryptionAlgorithm.megolm)], id: id)
    }

    /// Processes and commits `events` as one transaction; returns its step and the reads it made.
    func run(_ events: [JSONValue]) async throws -> (CryptoStep, reads: Int) {
        let before = await store.roomStateReads
        let step = try await machine.process(AppserviceTransaction(events: events))
        let reads = await store.roomStateReads - before
        try await store.save(step.changes)
        return (step, reads)
    }

    @Test("a portal room's invites and joins: three reads for the transaction, every invite and member recorded")
    func portalSetup() async throws {
        _ = try await run([encryption("!portal:bridge.test", id: "$enc")])
        let stranger = try UserID("@stranger:elsewhere.test")
        var events: [JSONValue] = []
        for (index, puppet) in puppets.enumerated() {
            events.append(member("!portal:bridge.test", puppet, "invite", by: bot, id: "$i\(index)"))
            events.append(member("!portal:bridge.test", puppet, "join", id: "$j\(index)"))
        }
        // Someone without a device here: invited and tracked, but no invite kept for history bundles.
        events.append(member("!portal:bridge.test", stranger, "invite", by: bot, id: "$stranger"))
        let (step, reads) = try await run(events)
        // The room, the members' tracking, the invitees' accounts: one query each (81 events; one to
        // three reads an event before).
        #expect(reads == 3)
        #expect(Set(step.changes.roomInvites.map(\.userID)) == Set(puppets))
        #expect(step.changes.roomInvites.allSatisfy { $0.inviter == bot })
        #expect(Set(step.changes.trackedUsers.keys) == Set(puppets + [stranger]))
        let members = try await store.members(roomID: try RoomID("!portal:bridge.test"))
        #expect(members.count == 41 && puppets.allSatisfy { members[$0] == "join" } && members[stranger] == "invite")

        // Already tracked, in a room whose encryption is stored: the next room reads the same three.
        var second: [JSONValue] = []
        for (index, puppet) in puppets.enumerated() { second.append(member("!second:bridge.test", puppet, "join", id: "$s\(index)")) }
        _ = try await run([encryption("!second:bridge.test", id: "$enc2")])
        let (again, secondReads) = try await run(second)
        #expect(secondReads == 2)  // the room and the tracking; no invite, so no account check
        #expect(again.changes.trackedUsers.isEmpty, "tracked users are not tracked again")
    }

    @Test("leaves: users still in another encrypted room stay tracked, the others are forgotten, in four reads")
    func leaves() async throws {
        var setup = [encryption("!a:bridge.test", id: "$ea"), encryption("!b:bridge.test", id: "$eb"), encryption("!c:bridge.test", id: "$ec")]
        for (index, puppet) in puppets.prefix(20).enumerated() {
            setup.append(member("!a:bridge.test", puppet, "join", id: "$a\(index)"))
            if index < 10 { setup.append(member("!b:bridge.test", puppet, "join", id: "$b\(index)")) }
        }
        _ = try await run(setup)
        #expect(try await store.trackedUsers(Array(puppets.prefix(20))).count == 20)

        var leaving: [JSONValue] = []
        for (index, puppet) in puppets.prefix(20).enumerated() { leaving.append(member("!a:bridge.test", puppet, "leave", id: "$l\(index)")) }
        // In the same transaction, puppet 19 joins !c (encrypted, stored): it stays tracked although it left !a first.
        leaving.append(member("!c:bridge.test", puppets[19], "join", id: "$c19"))
        let (step, reads) = try await run(leaving)
        // The rooms named, the members' tracking, the leavers' rooms, then those rooms' encryption.
        #expect(reads == 4)
        #expect(step.changes.untrackedUsers == Set(puppets[10..<19]))
        #expect(Set(try await store.trackedUsers(Array(puppets.prefix(20))).keys) == Set(puppets.prefix(10) + [puppets[19]]))
    }

    @Test("the same answers as without the prefetch: a leave then a rejoin in one transaction stays tracked")
    func leaveThenRejoin() async throws {
        _ = try await run([encryption("!a:bridge.test", id: "$ea"), member("!a:bridge.test", puppets[0], "join", id: "$j0")])
        let (step, _) = try await run([
            member("!a:bridge.test", puppets[0], "leave", id: "$l0"), member("!a:bridge.test", puppets[0], "join", id: "$j1"),
        ])
        #expect(step.changes.untrackedUsers.isEmpty)
        #expect(try await store.trackedUsers([puppets[0]]).count == 1)
        #expect(try await store.members(roomID: try RoomID("!a:bridge.test"))[puppets[0]] == "join")
    }

    @Test("hostile member events (no user id, membership not a string, no room, content not an object, a NUL, a huge key) are skipped; the good ones beside them land")
    func hostileMemberEvents() async throws {
        _ = try await run([encryption("!h:bridge.test", id: "$eh")])
        let huge = "@" + String(repeating: "a", count: 70_000) + ":bridge.test"
        let hostile: [JSONValue] = [
            ["type": "m.room.member", "room_id": "!h:bridge.test", "sender": .string(bot.rawValue), "state_key": "not a user", "content": ["membership": "join"]],
            ["type": "m.room.member", "room_id": "!h:bridge.test", "sender": .string(bot.rawValue), "state_key": .string(huge), "content": ["membership": "invite"]],
            ["type": "m.room.member", "room_id": "!h:bridge.test", "sender": .string(bot.rawValue), "state_key": "@nul\u{0}:bridge.test", "content": ["membership": "join"]],
            ["type": "m.room.member", "room_id": "!h:bridge.test", "sender": .string(bot.rawValue), "state_key": .string(puppets[1].rawValue), "content": ["membership": 5]],
            ["type": "m.room.member", "sender": .string(bot.rawValue), "state_key": .string(puppets[2].rawValue), "content": ["membership": "join"]],
            ["type": "m.room.member", "room_id": "!h:bridge.test", "sender": .string(bot.rawValue), "state_key": .string(puppets[3].rawValue), "content": "join"],
            ["type": "m.room.member", "room_id": .array([]), "sender": .string(bot.rawValue), "state_key": .string(puppets[4].rawValue), "content": ["membership": "join"]],
            member("!h:bridge.test", puppets[0], "invite", by: bot, id: "$good-invite"),
            member("!h:bridge.test", puppets[0], "join", id: "$good-join"),
        ]
        let (step, reads) = try await run(hostile)
        #expect(step.changes.memberships.map(\.userID) == [puppets[0], puppets[0]])
        #expect(step.changes.roomInvites.map(\.userID) == [puppets[0]])
        #expect(Set(step.changes.trackedUsers.keys) == [puppets[0]])
        #expect(reads <= 3)
    }
}

