import Olm
import Primitives

/// A session nobody else has the key of: no input can decrypt with it, so every decrypt must fail.
nonisolated(unsafe) let fuzzSession = try! InboundGroupSession(sessionKey: OutboundGroupSession.create().sessionKey)

/// Treats `input` as a Megolm ciphertext, both as the base64 text a sender puts in an event and as the
/// raw message bytes (encoded here), through ``InboundGroupSession/decrypt(_:)``: its libcrypto path
/// parses the message itself before libolm sees what it leaves undecided.
func fuzzMegolmCiphertext(_ input: UnsafeBufferPointer<UInt8>) {
    for text in [String(decoding: input, as: UTF8.self), Base64.encodeUnpadded(Array(input))] {
        if let decrypted = try? fuzzSession.decrypt(text) {
            preconditionFailure("a forged Megolm message decrypted at index \(decrypted.messageIndex)")
        }
    }
}
