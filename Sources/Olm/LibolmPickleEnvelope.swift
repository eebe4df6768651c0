import Primitives

/// libolm's pickle encryption, so that Sealbridge can rewrite an account's pickle body itself.
///
/// libolm seals every pickle the same way (its `_olm_enc_output` with the "Pickle" cipher): HKDF-SHA-256
/// of the pickle key with an empty salt and info `"Pickle"` gives 80 bytes — an AES-256 key, an HMAC key
/// and a CBC IV — the body is AES-256-CBC encrypted with PKCS #7 padding, the first 8 bytes of
/// HMAC-SHA-256 over the ciphertext are appended, and the whole is unpadded base64. Checked against
/// libolm 3.2.13 by `LibolmPickleEnvelopeTests` (libolm's pickles open; ours unpickle).
///
/// Used in memory, with a throw-away key, by ``Account/generateOneTimeKeys(count:)``, and with the store's
/// per-record pickle key by ``AccountSnapshot`` (a new device's account, a confirmed upload): the result is
/// exactly what libolm's `olm_pickle_account` would store under that key.
enum LibolmPickleEnvelope {
    static let macByteCount = 8

    /// The body of a libolm pickle, after checking its MAC.
    ///
    /// - Throws: `invalidBase64`, `badAccountKey` (MAC mismatch: wrong key or damaged), `corruptedPickle`.
    static func open(_ pickle: String, key: PickleKey) throws(OlmError) -> [UInt8] {
        guard var sealed = try? Base64.decode(pickle) else { throw OlmError(code: .invalidBase64, operation: "open libolm pickle") }
        guard sealed.count > macByteCount else { throw OlmError(code: .corruptedPickle, operation: "open libolm pickle") }
        var keys = try derive(key)
        defer { secureWipe(&keys.aes); secureWipe(&keys.mac) }
        let ciphertext = Array(sealed[..<(sealed.count - macByteCount)])
        let expected = Array(HMACSHA256.authenticationCode(for: ciphertext, key: keys.mac).prefix(macByteCount))
        guard constantTimeEquals(expected, Array(sealed.suffix(macByteCount))) else {
            throw OlmError(code: .badAccountKey, operation: "open libolm pickle")
        }
        secureWipe(&sealed)
        do {
            return try AES256CBC.decrypt(ciphertext, key: keys.aes, iv: keys.iv)
        } catch {
            throw OlmError(code: .corruptedPickle, operation: "open libolm pickle")
        }
    }

    /// Seals `body` as libolm would, for `olm_unpickle_*` with the same key.
    static func seal(_ body: [UInt8], key: PickleKey) throws(OlmError) -> String {
        var keys = try derive(key)
        defer { secureWipe(&keys.aes); secureWipe(&keys.mac) }
        guard var ciphertext = try? AES256CBC.encrypt(body, key: keys.aes, iv: keys.iv) else {
            throw OlmError(code: .unknown, operation: "seal libolm pickle (AES-256-CBC)")
        }
        ciphertext += HMACSHA256.authenticationCode(for: ciphertext, key: keys.mac).prefix(macByteCount)
        return Base64.encodeUnpadded(ciphertext)
    }

    private static func derive(_ key: PickleKey) throws(OlmError) -> (aes: [UInt8], mac: [UInt8], iv: [UInt8]) {
        guard var material = try? HKDFSHA256.deriveKey(from: key.bytes, salt: [], info: Array("Pickle".utf8), outputByteCount: 80) else {
            throw OlmError(code: .unknown, operation: "derive libolm pickle keys (HKDF)")
        }
        defer { secureWipe(&material) }
        return (Array(material[0..<32]), Array(material[32..<64]), Array(material[64..<80]))
    }
}
