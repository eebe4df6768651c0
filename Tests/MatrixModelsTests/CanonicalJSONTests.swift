import MatrixModels
import Testing

@Suite("Canonical JSON")
struct CanonicalJSONTests {
    /// Every example in the spec appendix "Canonical JSON", input → expected bytes.
    static let specExamples: [(String, String)] = [
        ("{}", "{}"),
        ("{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", "{\"one\":1,\"two\":\"Two\"}"),
        ("{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", "{\"a\":\"1\",\"b\":\"2\"}"),
        ("{\"b\":\"2\",\"a\":\"1\"}", "{\"a\":\"1\",\"b\":\"2\"}"),
        (
            """
            {
                "auth": {
                    "success": true,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            {
                                "medium": "email",
                                "address": "john.doe@example.org"
                            },
                            {
                                "medium": "msisdn",
                                "address": "123456789"
                            }
                        ]
                    }
                }
            }
            """,
            "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":\"John Doe\",\"three_pids\":[{\"address\":\"john.doe@example.org\",\"medium\":\"email\"},{\"address\":\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}"
        ),
        ("{\n    \"a\": \"日本語\"\n}", "{\"a\":\"日本語\"}"),
        ("{\n    \"本\": 2,\n    \"日\": 1\n}", "{\"日\":1,\"本\":2}"),
        ("{\n    \"a\": \"\\u65E5\"\n}", "{\"a\":\"日\"}"),
        ("{\n    \"a\": null\n}", "{\"a\":null}"),
        ("{\n    \"a\": -0,\n    \"b\": 1e10\n}", "{\"a\":0,\"b\":10000000000}"),
    ]

    @Test("the spec's published examples", arguments: specExamples)
    func specExample(input: String, expected: String) throws {
        #expect(try CanonicalJSON.string(JSONValue.parse(input)) == expected)
    }

    @Test("only the grammar's escapes are used: quote, backslash, \\b \\f \\n \\r \\t, \\u00XX lowercase")
    func escapes() throws {
        let value: JSONValue = ["a": .string("\"\\\u{08}\u{0C}\n\r\t\u{00}\u{1F}/\u{7F}\u{2028}é😀")]
        #expect(try CanonicalJSON.string(value) == "{\"a\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f/\u{7F}\u{2028}é😀\"}")
    }

    @Test("keys are ordered by code point, not by locale or UTF-16")
    func keyOrder() throws {
        let value: JSONValue = ["日": 1, "é": 2, "a": 3, "Z": 4, "😀": 5, "\u{FF61}": 6]
        #expect(try CanonicalJSON.string(value) == "{\"Z\":4,\"a\":3,\"é\":2,\"日\":1,\"\u{FF61}\":6,\"😀\":5}")
    }

    @Test("floats are refused", arguments: ["1.0", "0.5", "1.5e1", "-2.25"])
    func floatsRefused(number: String) throws {
        let value = try JSONValue.parse("{\"n\":\(number)}")
        #expect(throws: JSONError.self) { try CanonicalJSON.encode(value) }
        #expect { try CanonicalJSON.encode(value) } throws: { ($0 as? JSONError)?.code == .notCanonical }
    }

    @Test("integers at ±(2^53 − 1) pass; one beyond is refused")
    func integerRange() throws {
        #expect(try CanonicalJSON.string(["n": .integer(9_007_199_254_740_991)]) == "{\"n\":9007199254740991}")
        #expect(try CanonicalJSON.string(["n": .integer(-9_007_199_254_740_991)]) == "{\"n\":-9007199254740991}")
        #expect(throws: JSONError.self) { try CanonicalJSON.encode(["n": .integer(9_007_199_254_740_992)]) }
        #expect(throws: JSONError.self) { try CanonicalJSON.encode(["n": .integer(-9_007_199_254_740_992)]) }
        #expect(throws: JSONError.self) { try CanonicalJSON.encode(try JSONValue.parse("[9223372036854775807]")) }
    }

    @Test("signatures and unsigned are stripped at the top level only")
    func stripping() throws {
        let value = try JSONValue.parse("""
            {"a":1,"signatures":{"x":{}},"unsigned":{"age":3},"nested":{"signatures":1,"unsigned":2}}
            """)
        #expect(try CanonicalJSON.string(CanonicalJSON.removingSignaturesAndUnsigned(value))
            == "{\"a\":1,\"nested\":{\"signatures\":1,\"unsigned\":2}}")
    }
}
