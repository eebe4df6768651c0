import Foundation
import MatrixCrypto
import MatrixModels
import Testing

@Suite("History bundles (MSC4268): the pointer, the file and the bundle as a remote sender may write them")
struct HistoryBundleParseTests {
    static let key = [UInt8](repeating: 7, count: 32)

    /// A valid `file` object, with `change` applied.
    static func file(_ change: (inout [String: JSONValue]) -> Void = { _ in }) -> JSONValue {
        var file: [String: JSONValue] = [
            "v": "v2", "url": "mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe",
            "key": ["kty": "oct", "alg": "A256CTR", "ext": true, "key_ops": ["encrypt", "decrypt"], "k": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"],
            "iv": "w+sE15fzSc0AAAAAAAAAAA", "hashes": ["sha256": "fdSLu/YkRx3Wyh3KQabP3rd6+SFiKg5lsJZQHtkSAYA"],
        ]
        change(&file)
        return .object(file)
    }

    @Test("the spec's example file parses: key, iv, hash, server and media id")
    func valid() throws {
        let file = try EncryptedFile(json: Self.file())
        #expect(file.key == Self.key && file.iv.count == 16 && file.sha256.count == 32)
        #expect(file.url == (try MediaURI("mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe")))
        #expect(file.url.server == "example.org" && file.url.mediaID == "FHyPlCeYUSFFxlgbQYZmoEoe")
        // What the store seals reads back the same.
        #expect(try EncryptedFile(json: file.json) == file)
    }

    @Test("every missing, mistyped, mis-sized or foreign field is refused", arguments: [
        "no v", "v1", "no url", "url not mxc", "url with path", "url with NUL", "url empty id", "no key", "alg", "kty", "key_ops",
        "k short", "k not base64", "k number", "iv short", "iv missing", "no hashes", "sha256 short", "hashes not object",
    ])
    func refused(_ case: String) {
        let json = Self.file { file in
            switch `case` {
            case "no v": file["v"] = nil
            case "v1": file["v"] = "v1"
            case "no url": file["url"] = nil
            case "url not mxc": file["url"] = "https://example.org/x"
            case "url with path": file["url"] = "mxc://example.org/a/b"
            case "url with NUL": file["url"] = "mxc://example.org/a\u{0}b"
            case "url empty id": file["url"] = "mxc://example.org/"
            case "no key": file["key"] = nil
            case "alg": file["key"] = ["kty": "oct", "alg": "A128CTR", "k": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"]
            case "kty": file["key"] = ["kty": "RSA", "alg": "A256CTR", "k": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"]
            case "key_ops": file["key"] = ["kty": "oct", "alg": "A256CTR", "key_ops": ["encrypt"], "k": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"]
            case "k short": file["key"] = ["kty": "oct", "alg": "A256CTR", "k": "BwcH"]
            case "k not base64": file["key"] = ["kty": "oct", "alg": "A256CTR", "k": "!!!!"]
            case "k number": file["key"] = ["kty": "oct", "alg": "A256CTR", "k": 5]
            case "iv short": file["iv"] = "w+sE15fzSc0"
            case "iv missing": file["iv"] = nil
            case "no hashes": file["hashes"] = nil
            case "sha256 short": file["hashes"] = ["sha256": "fdSLu/YkRx3W"]
            case "hashes not object": file["hashes"] = "x"
            default: Issue.record("unknown case")
            }
        }
        #expect(throws: DecryptionFailure.self) { try EncryptedFile(json: json) }
    }

    @Test("open: the hash is checked before anything is decrypted; a flipped byte is refused")
    func open() throws {
        let plaintext = Array(#"{"room_keys":[]}"#.utf8)
        let (file, ciphertext) = try EncryptedFile.encrypt(plaintext, url: try MediaURI("mxc://hs/abc"))
        #expect(file.iv.suffix(8) == [UInt8](repeating: 0, count: 8))
        #expect(try file.open(ciphertext) == plaintext)
        var tampered = ciphertext
        tampered[0] ^= 1
        #expect(throws: HistoryBundleFailure.hashMismatch) { try file.open(tampered) }
        #expect(throws: HistoryBundleFailure.hashMismatch) { try file.open([]) }
    }

    @Test("the bundle must be a JSON object with a room_keys array; withheld, when there, an array")
    func bundle() throws {
        #expect(try HistoryBundle(plaintext: Array(#"{"room_keys":[1,{}],"withheld":[{}]}"#.utf8)).roomKeys.count == 2)
        #expect(try HistoryBundle(plaintext: Array(#"{"room_keys":[]}"#.utf8)).withheld.isEmpty)
        for bad in [#"{"room_keys":{}}"#, #"{}"#, #"[]"#, #"{"room_keys":[],"withheld":5}"#, "not json", ""] {
            #expect(throws: HistoryBundleFailure.self) { try HistoryBundle(plaintext: Array(bad.utf8)) }
        }
    }

    @Test("failure labels are a bounded set")
    func labels() {
        let all: [HistoryBundleFailure] = [.notInviter, .expired, .downloadFailed("x"), .tooLarge, .hashMismatch, .malformed("y")]
        #expect(all.map(\.label) == ["not_inviter", "expired", "download_failed", "too_large", "hash_mismatch", "malformed"])
    }
}
