import Foundation
import MatrixModels
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test("user ids: valid forms, historical localparts, parts exposed")
    func userIDs() throws {
        let alice = try UserID("@alice:example.org")
        #expect(alice.localpart == "alice")
        #expect(alice.serverName.rawValue == "example.org")
        #expect(try UserID("@Alice_Old!:example.org:8448").serverName.port == 8448)
        #expect(try UserID("@bridge_123:[::1]:8008").serverName.host == "[::1]")
        #expect(try UserID(localpart: "bot", serverName: ServerName("hs.local")).rawValue == "@bot:hs.local")
    }

    @Test("user ids: invalid forms are refused with the right code", arguments: [
        ("", IdentifierError.Code.empty), ("alice:example.org", .wrongSigil), ("@alice", .missingServerName),
        ("@:example.org", .empty), ("@al ice:example.org", .invalidCharacter), ("@alicé:example.org", .invalidCharacter),
        ("@alice:exa mple.org", .invalidServerName), ("@alice:example.org:99999", .invalidServerName),
        ("@" + String(repeating: "a", count: 250) + ":example.org", .tooLong),
    ])
    func invalidUserIDs(input: String, code: IdentifierError.Code) {
        #expect { try UserID(input) } throws: { ($0 as? IdentifierError)?.code == code }
    }

    @Test("room ids without a server part (room version 12) are accepted")
    func roomIDs() throws {
        #expect(try RoomID("!8enJMLhcabcdefghijklmnopqrstuvwxyz0123456789AB").serverName == nil)
        #expect(try RoomID("!abc:example.org").serverName?.rawValue == "example.org")
        for bad in ["", "!", "#abc:example.org", "!a b", "!abc:"] {
            #expect(throws: IdentifierError.self) { try RoomID(bad) }
        }
    }

    @Test("event ids, aliases, device ids, server names")
    func others() throws {
        #expect(try EventID("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg").rawValue.hasPrefix("$"))
        #expect(try EventID("$legacy:example.org").rawValue == "$legacy:example.org")
        #expect(throws: IdentifierError.self) { try EventID("$") }
        #expect(throws: IdentifierError.self) { try EventID("!x") }
        #expect(try RoomAlias("#room:example.org").serverName.rawValue == "example.org")
        #expect(throws: IdentifierError.self) { try RoomAlias("#room") }
        #expect(try DeviceID("SEALBRIDGE_ABC").rawValue == "SEALBRIDGE_ABC")
        #expect(throws: IdentifierError.self) { try DeviceID("") }
        #expect(throws: IdentifierError.self) { try DeviceID("a\nb") }
        for valid in ["matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]", "[1234:5678::abcd]:5678"] {
            #expect(throws: Never.self) { try ServerName(valid) }
        }
        for invalid in ["", "matrix.org:", "matrix.org:abc", "[1234:5678::abcd", "[zz]", "under_score.org", "a b"] {
            #expect(throws: IdentifierError.self) { try ServerName(invalid) }
        }
    }

    @Test("ids are equal and hash alike exactly when their raw strings are")
    func equalityIsTheRawString() throws {
        let room = try RoomID("!abc:example.org:8448"), same = try RoomID("!abc:example.org:8448")
        #expect(room == same && room.hashValue == same.hashValue)
        #expect(try RoomID("!abc:example.org") != RoomID("!abc:Example.org"))
        #expect(try UserID("@a:hs") != UserID("@A:hs"))
        let users = Set(try ["@a:hs", "@a:hs", "@b:hs", "@a:hs:1"].map { try UserID($0) })
        #expect(users.count == 3)
        #expect(try [RoomID("!b:x"), RoomID("!a:x")].sorted().map(\.rawValue) == ["!a:x", "!b:x"])
    }

    @Test("byte-wise checks of ASCII ids say what the Character-wise ones say of any id")
    func asciiAndUnicodeAgree() throws {
        // A combining mark joins the sigil (or colon) into another Character: refused or kept whole as before.
        #expect(throws: IdentifierError.self) { try RoomID("!\u{301}abc:example.org") }
        #expect(throws: IdentifierError.self) { try UserID("@\u{301}a:example.org") }
        let marked = try RoomID("!abc:\u{301}def:example.org")
        #expect(marked.serverName?.rawValue == "example.org")
        #expect(throws: IdentifierError.self) { try RoomID("!abc:exämple.org") }
        #expect(throws: IdentifierError.self) { try ServerName("exämple.org") }
        #expect(throws: IdentifierError.self) { try ServerName("example.org:8\r\n") }
        #expect(throws: IdentifierError.self) { try ServerName("a\u{0}b.org") }
        for valid in ["Example-1.ORG", "x.y.z:65535", "0.0.0.0:0"] {
            #expect(throws: Never.self) { try ServerName(valid) }
        }
        let server = try ServerName("Example-1.org:8448")
        #expect(server.host == "Example-1.org" && server.port == 8448)
        #expect(try UserID("@bot:example.org:8448").serverName.port == 8448)
        #expect(try RoomID("!x:[::1]:80").serverName?.host == "[::1]")
    }

    @Test("ids decode from JSON strings and refuse invalid ones")
    func codable() throws {
        struct Holder: Codable { var user: UserID; var room: RoomID }
        let decoded = try JSONDecoder().decode(Holder.self, from: Data(#"{"user":"@a:b.c","room":"!x"}"#.utf8))
        #expect(decoded.user.rawValue == "@a:b.c")
        #expect(String(decoding: try JSONEncoder().encode(decoded.room), as: UTF8.self) == "\"!x\"")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Holder.self, from: Data(#"{"user":"a","room":"!x"}"#.utf8)) }
    }
}
