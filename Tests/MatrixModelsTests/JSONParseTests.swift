import MatrixModels
import Testing

@Suite("JSON parsing")
struct JSONParseTests {
    @Test("values of every kind, integers exact")
    func kinds() throws {
        let value = try JSONValue.parse(#" {"n":null,"t":true,"f":false,"i":-42,"big":9223372036854775807,"d":2.5,"s":"x","a":[1,[]],"o":{}} "#)
        #expect(value["n"] == .null)
        #expect(value["t"]?.boolValue == true)
        #expect(value["f"]?.boolValue == false)
        #expect(value["i"]?.integerValue == -42)
        #expect(value["big"]?.integerValue == Int64.max)
        #expect(value["d"] == .double(2.5))
        #expect(value["s"]?.stringValue == "x")
        #expect(value["a"]?[0]?.integerValue == 1)
        #expect(value["a"]?[1]?.arrayValue?.isEmpty == true)
        #expect(value["o"]?.objectValue?.isEmpty == true)
        #expect(try JSONValue.parse("18446744073709551616") == .double(18446744073709551616))
    }

    @Test("escapes decode, surrogate pairs combine into one scalar")
    func escapes() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSONValue.parse(#""\u00e9\u65E5""#) == .string("é日"))
    }

    @Test("malformed input is refused with a typed error", arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc", "{\"a\":1}x",
        "[1] [2]", "'a'", "{a:1}", "\"\u{01}\"", "\"\\x\"", "\"\\u12\"", "NaN", "Infinity", "1e999",
    ])
    func malformed(input: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(input) }
    }

    @Test("lone surrogates and invalid UTF-8 are refused as invalidUTF8")
    func invalidText() {
        for input in [#""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#] {
            #expect { try JSONValue.parse(input) } throws: { ($0 as? JSONError)?.code == .invalidUTF8 }
        }
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect { try JSONValue.parse(bytes) } throws: { ($0 as? JSONError)?.code == .invalidUTF8 }
        let overlong: [UInt8] = [0x22, 0xC0, 0xAF, 0x22]
        #expect { try JSONValue.parse(overlong) } throws: { ($0 as? JSONError)?.code == .invalidUTF8 }
    }

    @Test("duplicate keys are refused: a signature over them would be ambiguous")
    func duplicateKeys() {
        #expect { try JSONValue.parse(#"{"a":1,"a":2}"#) } throws: { ($0 as? JSONError)?.code == .duplicateKey }
    }

    @Test("nesting is limited to 512 levels")
    func depth() throws {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { try JSONValue.parse(ok) }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect { try JSONValue.parse(deep) } throws: { ($0 as? JSONError)?.code == .depthExceeded }
    }

    @Test("the error names the byte offset")
    func offset() {
        #expect { try JSONValue.parse("[1, 2, x]") } throws: { ($0 as? JSONError)?.offset == 7 }
    }

    @Test("serialized() escapes only quote, backslash and control characters, in runs of any length")
    func serializedEscapes() throws {
        let long = String(repeating: "abc", count: 400)
        let cases: [(String, String)] = [
            ("", #""""#), ("plain", #""plain""#), ("\"", #""\"""#), ("a\\b", #""a\\b""#),
            ("\u{0}x\u{1F}", #""\u0000x\u001f""#), ("\n\n", #""\n\n""#), ("é😀\u{7F}/", "\"é😀\u{7F}/\""),
            (long + "\t" + long, "\"" + long + "\\t" + long + "\""),
        ]
        for (string, expected) in cases {
            #expect(JSONValue.string(string).serializedString() == expected)
            #expect(try JSONValue.parse(JSONValue.string(string).serialized()) == .string(string))
        }
        // A string that is not stored contiguously (bridged or a substring copy) is written the same.
        let sliced = String(("xx\"" + long).dropFirst(2))
        #expect(JSONValue.string(sliced).serializedString() == "\"\\\"" + long + "\"")
    }

    @Test("serialized() round trips and is deterministic")
    func serialize() throws {
        let text = #"{"b":[1,2.5,"x\n",null,true],"a":{"z":-1}}"#
        let value = try JSONValue.parse(text)
        #expect(value.serializedString() == #"{"a":{"z":-1},"b":[1,2.5,"x\n",null,true]}"#)
        #expect(try JSONValue.parse(value.serialized()) == value)
        #expect(JSONValue.double(.infinity).serializedString() == "null")
    }
}
