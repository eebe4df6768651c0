import MatrixCrypto
import MatrixModels

/// Stands in for a sender whose id does not parse.
let someone = try! UserID("@fuzz:localhost")

/// Runs the public parsers that read sender-controlled JSON over `value`. Results are dropped: only
/// crashes, sanitizer reports and the invariants checked here count.
func exercise(_ value: JSONValue, sender: UserID?) {
    // Whatever we parsed, we must be able to write and read back (logs, request bodies, the outbox).
    precondition((try? JSONValue.parse(value.serialized())) != nil, "serialized JSON does not parse back")
    _ = try? CanonicalJSON.encode(CanonicalJSON.removingSignaturesAndUnsigned(value))

    if let envelope = try? MegolmDecryption.Envelope(content: value) {
        _ = MegolmDecryption.messageIndex(of: envelope.ciphertext)
    }
    if let ciphertext = value["ciphertext"]?.stringValue { _ = MegolmDecryption.messageIndex(of: ciphertext) }
    if let key = try? RoomKey(content: value) { _ = try? key.inboundSession() }
    // MSC4268 history bundles: the pointer's file, and a bundle's plaintext.
    for file in [value, value["file"], value["content"]?["file"]].compactMap({ $0 }) {
        if let parsed = try? EncryptedFile(json: file) {
            precondition((try? EncryptedFile(json: parsed.json)) == parsed, "an EncryptedFile does not read back the same")
        }
    }
    _ = try? HistoryBundle(plaintext: value.serialized())

    let user = sender ?? someone
    for keys in [value, value["sender_device_keys"], value["device_keys"]].compactMap({ $0 }) {
        let owner = keys["user_id"]?.stringValue.flatMap { try? UserID($0) } ?? user
        _ = try? VerifiedDeviceKeys(keys, expectedUser: owner)
    }
    _ = try? OlmDecryption.validate(
        value, sender: user, recipient: user, recipientEd25519: value["recipient_keys"]?["ed25519"]?.stringValue ?? "",
        senderEd25519: value["keys"]?["ed25519"]?.stringValue)

    // Strings that may hold JSON themselves (plaintexts, ciphertext bodies).
    if case .object(let members) = value {
        for case .string(let text) in members.values { _ = try? JSONValue.parse(text) }
    }
}
