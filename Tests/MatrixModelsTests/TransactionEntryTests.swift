import Foundation
import MatrixModels
import Testing

/// A transaction is judged entry by entry: one bad entry must cost only itself (see
/// `AppserviceTransaction.decode`).
@Suite("Transaction decoding, entry by entry")
struct TransactionEntryTests {
    static let goodEvent = #"{"type":"m.room.message","room_id":"!r:hs","sender":"@a:hs","event_id":"$good","content":{"body":"hi"}}"#
    static let goodToDevice = #"{"type":"m.room.encrypted","sender":"@a:hs","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2"},"to_user_id":"@b:hs","to_device_id":"SB1"}"#

    static func decode(_ text: String) throws -> AppserviceTransaction {
        try AppserviceTransaction.decode(Array(text.utf8))
    }

    /// One bad entry beside good ones, per reason.
    struct Case: Sendable, CustomTestStringConvertible {
        var body: String
        var reason: SkippedEntries.Reason
        var count = 1
        var events = 0
        var toDevice = 0
        var testDescription: String { reason.rawValue }
    }

    static let cases: [Case] = [
        Case(body: #"{"events":[{"type":"x",},\#(goodEvent)]}"#, reason: .unparseable, events: 1),
        Case(body: #"{"events":[{"n":1e400},\#(goodEvent),,\#(goodEvent)]}"#, reason: .unparseable, count: 2, events: 2),
        Case(body: #"{"events":[{"type":"x","content":\#(nested(600))},\#(goodEvent)]}"#, reason: .tooDeep, events: 1),
        Case(body: #"{"events":[{"type":"\udc00"},\#(goodEvent)]}"#, reason: .invalidUTF8, events: 1),
        Case(body: #"{"events":[{"type":"a","type":"b"},\#(goodEvent)]}"#, reason: .duplicateKey, events: 1),
        Case(body: #"{"events":[1,\#(goodEvent)],"ephemeral":["x"]}"#, reason: .notAnObject, count: 2, events: 1),
        Case(body: #"{"to_device":[{"sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"X"},\#(goodToDevice)]}"#, reason: .badToDeviceType, toDevice: 1),
        Case(body: #"{"to_device":[{"type":"t","sender":"@a","to_user_id":"@b:hs","to_device_id":"X"},\#(goodToDevice)]}"#, reason: .badToDeviceSender, toDevice: 1),
        Case(body: #"{"to_device":[{"type":"t","sender":"@a:hs","to_user_id":"@b:hs"},\#(goodToDevice)]}"#, reason: .badToDeviceRecipient, toDevice: 1),
        Case(body: #"{"events":[\#(goodEvent)],"device_lists":{"changed":["nope","@c:hs"]}}"#, reason: .badUserID, events: 1),
        Case(body: #"{"events":[\#(goodEvent)],"device_one_time_keys_count":{"@b:hs":{"":{},"X":{}}}}"#, reason: .badDeviceID, events: 1),
        Case(body: #"{"events":[\#(goodEvent)],"device_one_time_keys_count":{"@b:hs":{"A":{"x":2147483648},"X":{}}}}"#, reason: .badKeyCount, events: 1),
        Case(body: #"{"events":[\#(goodEvent)],"device_unused_fallback_key_types":{"@b:hs":{"A":[7],"X":[]}}}"#, reason: .badFallbackTypes, events: 1),
        Case(body: #"{"events":{},"ephemeral":[\#(goodEvent)],"to_device":[\#(goodToDevice)]}"#, reason: .wrongSectionType, toDevice: 1),
        Case(body: #"{"events":[\#(goodEvent)],"events":[\#(goodEvent),\#(goodEvent)]}"#, reason: .duplicateSection, events: 1),
    ]

    @Test("a bad entry is left out and counted by reason; the good ones beside it survive", arguments: cases)
    func leftOut(_ testCase: Case) throws {
        let transaction = try Self.decode(testCase.body)
        #expect(transaction.skipped == SkippedEntries([testCase.reason: testCase.count]))
        #expect(transaction.skipped.total == testCase.count)
        #expect(transaction.events.count == testCase.events)
        #expect(transaction.events.allSatisfy { $0["event_id"] == "$good" })
        #expect(transaction.toDevice.count == testCase.toDevice)
    }

    @Test("every reason is covered above, and raw values are stable snake_case metric labels")
    func reasons() {
        #expect(Set(Self.cases.map(\.reason)) == Set(SkippedEntries.Reason.allCases))
        for reason in SkippedEntries.Reason.allCases {
            #expect(reason.rawValue.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber }, "\(reason.rawValue)")
        }
    }

    @Test("the good entries beside bad ones are the ones kept, in order")
    func survivors() throws {
        let body = #"""
            {"device_lists":{"changed":["nope","@c:hs",5,"@d:hs"],"left":["@e:hs",null],"removed":["bad","@f:hs"]},
             "device_one_time_keys_count":{"nope":{"X":{}},"@b:hs":{"X":{"signed_curve25519":7},"Y":{"signed_curve25519":-1},"Z":{}},"@c:hs":[]},
             "device_unused_fallback_key_types":{"@b:hs":{"X":["signed_curve25519"],"Y":"signed_curve25519"}}}
            """#
        let transaction = try Self.decode(body)
        let b = try UserID("@b:hs")
        #expect(transaction.deviceLists == DeviceListChanges(changed: [try UserID("@c:hs"), try UserID("@d:hs")], left: [try UserID("@e:hs"), try UserID("@f:hs")]))
        #expect(transaction.oneTimeKeyCounts == [b: [try DeviceID("X"): ["signed_curve25519": 7], try DeviceID("Z"): [:]]])
        #expect(transaction.unusedFallbackKeyTypes == [b: [try DeviceID("X"): ["signed_curve25519"]]])
        #expect(transaction.skipped == SkippedEntries([.badUserID: 5, .badKeyCount: 1, .notAnObject: 1, .badFallbackTypes: 1]))
    }

    @Test("to-device content nested 600 and 1,000 deep is left out; the valid message beside it survives", arguments: [600, 1_000])
    func deepToDevice(depth: Int) throws {
        let deep = #"{"type":"m.room.encrypted","sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"SB1","content":\#(Self.nested(depth))}"#
        let transaction = try Self.decode(#"{"de.sorunome.msc2409.to_device":[\#(deep),\#(Self.goodToDevice)]}"#)
        #expect(transaction.toDevice.count == 1)
        #expect(transaction.toDevice.first?.toDeviceID == (try DeviceID("SB1")))
        #expect(transaction.droppedToDevice == 1)
        #expect(transaction.skipped == SkippedEntries([.tooDeep: 1]))
    }

    @Test("nesting deeper than the stack could take costs one entry, not the daemon")
    func nestingBeyondTheStack() throws {
        let depth = 200_000
        let deep = String(repeating: #"{"a":["#, count: depth) + String(repeating: "]}", count: depth)
        let transaction = try Self.decode(#"{"events":[{"content":\#(deep)},\#(Self.goodEvent)],"org.example":\#(deep)}"#)
        #expect(transaction.events.count == 1)
        #expect(transaction.skipped == SkippedEntries([.tooDeep: 1]))
    }

    @Test("the 512-level limit applies to each entry from its own root")
    func depthLimit() throws {
        func body(_ arrays: Int) -> String {
            #"{"events":[{"content":\#(String(repeating: "[", count: arrays) + String(repeating: "]", count: arrays))}]}"#
        }
        #expect(try Self.decode(body(511)).events.count == 1)
        #expect(try Self.decode(body(512)).skipped == SkippedEntries([.tooDeep: 1]))
    }

    @Test("lone surrogates cost only their entry, wherever they are")
    func loneSurrogates() throws {
        let body = #"""
            {"events":[{"type":"m.room.message","content":{"body":"\ud800"}},{"type":"m.room.message","content":{"\udc00":1}},\#(Self.goodEvent)],
             "to_device":[{"type":"t","sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"SB\udbff","content":{}},\#(Self.goodToDevice)],
             "org.example.\udc00":1,
             "device_one_time_keys_count":{"@b\ud800:hs":{"X":{}},"@b:hs":{"\udfff":{},"X":{}}}}
            """#
        let transaction = try Self.decode(body)
        #expect(transaction.events.count == 1)
        #expect(transaction.toDevice.count == 1)
        #expect(transaction.droppedToDevice == 1)
        #expect(transaction.oneTimeKeyCounts == [try UserID("@b:hs"): [try DeviceID("X"): [:]]])
        #expect(transaction.skipped == SkippedEntries([.invalidUTF8: 6]))
    }

    @Test("NUL (\\u0000) is valid JSON and decodes, in events and to-device content")
    func nul() throws {
        let body = #"""
            {"events":[{"type":"m.room.encrypted\u0000","room_id":"!r\u0000","content":{"session_id":"S\u0000","k\u0000":"v\u0000"}}],
             "to_device":[{"type":"m.room_key\u0000","sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"SB1","content":{"ciphertext":"\u0000"}}]}
            """#
        let transaction = try Self.decode(body)
        #expect(transaction.skipped.isEmpty)
        #expect(transaction.events.first?["type"] == "m.room.encrypted\u{0}")
        #expect(transaction.events.first?["content"]?["k\u{0}"] == "v\u{0}")
        #expect(transaction.toDevice.first?.type == "m.room_key\u{0}")
        #expect(transaction.toDevice.first?.content["ciphertext"] == "\u{0}")
    }

    @Test("a NUL in an id makes it no id: the to-device message is unroutable")
    func nulInRecipient() throws {
        let transaction = try Self.decode(#"{"to_device":[{"type":"t","sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"SB\u00001"},\#(Self.goodToDevice)]}"#)
        #expect(transaction.toDevice.count == 1)
        #expect(transaction.skipped == SkippedEntries([.badToDeviceRecipient: 1]))
    }

    @Test("10,000 events in one body all decode")
    func tenThousandEvents() throws {
        let body = #"{"events":[\#(Array(repeating: Self.goodEvent, count: 10_000).joined(separator: ","))]}"#
        let transaction = try Self.decode(body)
        #expect(transaction.events.count == 10_000)
        #expect(transaction.skipped.isEmpty)
    }

    @Test("unknown fields are ignored, at every level; an unknown top-level field is not read")
    func unknownFields() throws {
        let body = #"""
            {"events":[{"type":"m.room.message","content":{},"org.example":[1]}],"org.example.future":{"a":[1,{"b":null}]},"age":1,
             "org.example.unread":[1,,tru,{"a" 1}],
             "to_device":[{"type":"t","sender":"@a:hs","to_user_id":"@b:hs","to_device_id":"X","org.example":{}}],
             "device_lists":{"changed":["@c:hs"],"org.example":5}}
            """#
        let transaction = try Self.decode(body)
        #expect(transaction.skipped.isEmpty)
        #expect(transaction.events.first?["org.example"] == [1])
        #expect(transaction.toDevice.count == 1)
        #expect(transaction.deviceLists.changed == [try UserID("@c:hs")])
    }

    @Test("a stable spelling of the wrong type is counted and the unstable one read; null counts as absent")
    func spellings() throws {
        let body = #"""
            {"to_device":5,"de.sorunome.msc2409.to_device":[\#(Self.goodToDevice)],"ephemeral":null,"de.sorunome.msc2409.ephemeral":[{"type":"m.typing"}],
             "device_lists":null,"org.matrix.msc3202.device_lists":{"changed":["@c:hs"]}}
            """#
        let transaction = try Self.decode(body)
        #expect(transaction.toDevice.count == 1)
        #expect(transaction.ephemeral.count == 1)
        #expect(transaction.deviceLists.changed.count == 1)
        #expect(transaction.skipped == SkippedEntries([.wrongSectionType: 1]))
    }

    @Test("a body that is an array, a string or a number is not an object", arguments: [
        "[]", #"[{"events":[]}]"#, #""events""#, "42", "null", "true", " [ [ ] ] ",
    ])
    func notAnObject(body: String) {
        #expect { try Self.decode(body) } throws: { ($0 as? TransactionDecodingError)?.kind == .badJSON }
    }

    @Test("a body that is not JSON at its top level is refused", arguments: [
        "", " ", "{", "}", "nope", "{nope}", "{events:[]}", #"{"events" []}"#, #"{"events":}"#, #"{"events":[],}"#, #"{,"events":[]}"#,
        #"{"events":[}"#, #"{"events":[]]"#, #"{"events":[{"a":[}]}]}"#, #"{"events":[]} x"#, #"{"events":[]}{}"#,
        #"{"events":[{"type":"x}]}"#, #"{"events":[] 1}"#, "\u{FEFF}{}", #"{"a":1}}"#, "[1,2", "1 2", #""abc"#,
    ])
    func notJSON(body: String) {
        #expect { try Self.decode(body) } throws: { ($0 as? TransactionDecodingError)?.kind == .notJSON }
    }

    @Test("every truncation of a valid body is refused as not JSON")
    func truncations() throws {
        let body = Array(AppserviceTransactionTests.synapseBody.utf8)
        #expect(try AppserviceTransaction.decode(body).skipped.isEmpty)
        var refused = 0
        for length in 0..<body.count {
            do {
                _ = try AppserviceTransaction.decode(body[..<length])
                Issue.record("a body cut after \(length) bytes was accepted")
            } catch {
                #expect(error.kind == .notJSON)
                refused += 1
            }
        }
        #expect(refused == body.count)
    }

    @Test("decoding a 100-event transaction: timing, printed for comparison (not asserted)")
    func timing() throws {
        let event = #"{"type":"m.room.encrypted","room_id":"!8enJMLhcAbCdEfGhIj","sender":"@alice:localhost","age":1,"origin_server_ts":1732770000000,"event_id":"$evAbCdEfGhIjKlMnOpQrStUvWxYz0123456789","content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEpABm6AwgAEpABm6","session_id":"SsEeSsSsIiOoNnIiDd0123456789","device_id":"ALICEDEV"}}"#
        let body = Array(#"{"events":[\#(Array(repeating: event, count: 100).joined(separator: ","))],"de.sorunome.msc2409.to_device":[\#(Self.goodToDevice)]}"#.utf8)
        let iterations = 50
        let start = ContinuousClock.now
        for _ in 0..<iterations { _ = try AppserviceTransaction.decode(body) }
        let perDecode = (ContinuousClock.now - start) / iterations
        print("AppserviceTransaction.decode: \(body.count) bytes, 100 events: \(perDecode) per decode")
    }

    /// Objects and arrays alternating, `depth` levels.
    static func nested(_ depth: Int) -> String {
        String(repeating: #"{"a":["#, count: depth / 2) + "1" + String(repeating: "]}", count: depth / 2)
    }
}
