import MatrixModels
import Testing

@Suite("Appservice transaction decoding")
struct AppserviceTransactionTests {
    /// A body shaped like what Synapse 1.163 sends with MSC2409 and MSC3202 on (homeserver-facts.md):
    /// unstable names, both OTK count spellings, `left: []`, a legacy `user_id` and `age` on events.
    static let synapseBody = """
        {"events":[{"type":"m.room.encrypted","room_id":"!8enJMLhcAbCdEf","sender":"@alice:localhost","user_id":"@alice:localhost","age":12,
          "event_id":"$e1","content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA","session_id":"S","sender_key":"K","device_id":"D"}}],
         "de.sorunome.msc2409.ephemeral":[{"type":"m.typing","room_id":"!8enJMLhcAbCdEf","content":{"user_ids":[]}}],
         "de.sorunome.msc2409.to_device":[{"type":"m.room.encrypted","sender":"@alice:localhost","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2"},
           "to_user_id":"@bridge_1:localhost","to_device_id":"SB1"}],
         "org.matrix.msc3202.device_lists":{"changed":["@alice:localhost"],"left":[]},
         "org.matrix.msc3202.device_one_time_keys_count":{"@bridge_1:localhost":{"SB1":{"signed_curve25519":49}},"@bot:localhost":{"BOT":{}}},
         "org.matrix.msc3202.device_one_time_key_counts":{"@bridge_1:localhost":{"SB1":{"signed_curve25519":49}},"@bot:localhost":{"BOT":{}}},
         "org.matrix.msc3202.device_unused_fallback_key_types":{"@bridge_1:localhost":{"SB1":["signed_curve25519"]},"@bot:localhost":{"BOT":[]}},
         "some.future.field":{"ignored":true}}
        """

    @Test("Synapse's unstable spellings decode into every field")
    func synapseShape() throws {
        let transaction = try AppserviceTransaction.decode(Array(Self.synapseBody.utf8))
        let bridge = try UserID("@bridge_1:localhost"), bot = try UserID("@bot:localhost")
        #expect(transaction.events.count == 1)
        #expect(transaction.events[0]["room_id"]?.stringValue == "!8enJMLhcAbCdEf")
        #expect(transaction.ephemeral.count == 1)
        #expect(transaction.toDevice == [ToDeviceEvent(
            type: "m.room.encrypted", sender: try UserID("@alice:localhost"),
            content: ["algorithm": "m.olm.v1.curve25519-aes-sha2"], toUserID: bridge, toDeviceID: try DeviceID("SB1"))])
        #expect(transaction.deviceLists == DeviceListChanges(changed: [try UserID("@alice:localhost")], left: []))
        #expect(transaction.oneTimeKeyCounts[bridge]?[try DeviceID("SB1")] == ["signed_curve25519": 49])
        // An empty map means zero keys: it must survive decoding as an empty map, not vanish.
        #expect(transaction.oneTimeKeyCounts[bot]?[try DeviceID("BOT")] == [:])
        #expect(transaction.unusedFallbackKeyTypes[bridge]?[try DeviceID("SB1")] == ["signed_curve25519"])
        #expect(transaction.unusedFallbackKeyTypes[bot]?[try DeviceID("BOT")] == [])
    }

    @Test("stable names decode and win over unstable ones; `removed` merges into left")
    func stableNames() throws {
        let body = """
            {"events":[],"ephemeral":[{"type":"m.receipt"}],"de.sorunome.msc2409.ephemeral":[],
             "to_device":[{"type":"m.dummy","sender":"@a:hs","content":{},"to_user_id":"@b:hs","to_device_id":"X"}],
             "device_lists":{"changed":[],"left":["@c:hs"],"removed":["@d:hs"]},
             "device_one_time_keys_count":{"@b:hs":{"X":{"signed_curve25519":3}}},
             "org.matrix.msc3202.device_one_time_keys_count":{"@b:hs":{"X":{"signed_curve25519":99}}},
             "device_unused_fallback_key_types":{"@b:hs":{"X":[]}}}
            """
        let transaction = try AppserviceTransaction.decode(Array(body.utf8))
        #expect(transaction.ephemeral.count == 1)
        #expect(transaction.toDevice.first?.type == "m.dummy")
        #expect(transaction.deviceLists.left == [try UserID("@c:hs"), try UserID("@d:hs")])
        #expect(transaction.oneTimeKeyCounts[try UserID("@b:hs")]?[try DeviceID("X")] == ["signed_curve25519": 3])
        #expect(transaction.unusedFallbackKeyTypes[try UserID("@b:hs")]?[try DeviceID("X")] == [])
    }

    @Test("the other OTK count spellings are read too", arguments: [
        "device_one_time_key_counts", "org.matrix.msc3202.device_one_time_key_counts",
    ])
    func countSpellings(name: String) throws {
        let transaction = try AppserviceTransaction.decode(Array(#"{"events":[],"\#(name)":{"@b:hs":{"X":{"signed_curve25519":7}}}}"#.utf8))
        #expect(transaction.oneTimeKeyCounts[try UserID("@b:hs")]?[try DeviceID("X")] == ["signed_curve25519": 7])
    }

    @Test("unroutable to-device entries are dropped and counted by reason, not fatal")
    func unroutable() throws {
        let body = #"{"events":[],"to_device":[{"type":"m.dummy","sender":"@a:hs","content":{}},{"type":"m.dummy","sender":"nope","to_user_id":"@b:hs","to_device_id":"X"}]}"#
        let transaction = try AppserviceTransaction.decode(Array(body.utf8))
        #expect(transaction.toDevice.isEmpty)
        #expect(transaction.droppedToDevice == 2)
        #expect(transaction.skipped == SkippedEntries([.badToDeviceRecipient: 1, .badToDeviceSender: 1]))
    }

    @Test("only a body that is not JSON, or not an object, is refused", arguments: [
        ("{nope", TransactionDecodingError.Kind.notJSON), ("", .notJSON), ("{nope}", .notJSON), ("[]", .badJSON), ("\"events\"", .badJSON),
        ("7", .badJSON), ("null", .badJSON),
    ])
    func refusals(body: String, kind: TransactionDecodingError.Kind) {
        #expect { try AppserviceTransaction.decode(Array(body.utf8)) } throws: { ($0 as? TransactionDecodingError)?.kind == kind }
    }

    @Test("sections and entries of the wrong shape are left out and counted, not refused", arguments: [
        (#"{"events":{}}"#, SkippedEntries.Reason.wrongSectionType), (#"{"events":[],"device_lists":[]}"#, .wrongSectionType),
        (#"{"events":[],"device_lists":{"changed":["not-a-user"]}}"#, .badUserID),
        (#"{"events":[],"device_one_time_keys_count":{"@b:hs":{"X":{"signed_curve25519":-1}}}}"#, .badKeyCount),
        (#"{"events":[],"device_one_time_keys_count":{"@b:hs":{"X":{"signed_curve25519":"7"}}}}"#, .badKeyCount),
        (#"{"events":[],"device_unused_fallback_key_types":{"@b:hs":{"X":"signed_curve25519"}}}"#, .badFallbackTypes),
    ])
    func leftOut(body: String, reason: SkippedEntries.Reason) throws {
        #expect(try AppserviceTransaction.decode(Array(body.utf8)).skipped == SkippedEntries([reason: 1]))
    }
}
