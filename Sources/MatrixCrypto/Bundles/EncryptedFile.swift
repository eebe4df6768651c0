import MatrixModels
import Primitives

/// The spec's `EncryptedFile` (v2): an AES-256-CTR key (JWK `A256CTR`), its IV, and the SHA-256 of
/// the ciphertext. The key and IV are secrets: the store keeps them sealed.
public struct EncryptedFile: Sendable, Hashable {
    public var url: MediaURI
    public var key: [UInt8]
    public var iv: [UInt8]
    public var sha256: [UInt8]

    public init(url: MediaURI, key: [UInt8], iv: [UInt8], sha256: [UInt8]) {
        self.url = url
        self.key = key
        self.iv = iv
        self.sha256 = sha256
    }

    /// Reads `file` of an `m.room_key_bundle`: `v: "v2"`, `url`, `key` (`kty: oct`, `alg: A256CTR`,
    /// `k`: 32 bytes of URL-safe base64, `key_ops` naming `decrypt` when present), `iv` (16 bytes),
    /// `hashes.sha256` (32 bytes). Anything else is refused with what is wrong, never the values.
    public init(json: JSONValue) throws(DecryptionFailure) {
        guard json["v"]?.stringValue == "v2" else { throw .malformed("file.v is not \"v2\"") }
        guard let url = json["url"]?.stringValue else { throw .malformed("file.url missing") }
        let jwk = json["key"] ?? .null
        guard jwk["kty"]?.stringValue == "oct", jwk["alg"]?.stringValue == "A256CTR" else {
            throw .malformed("file.key is not an A256CTR octet key")
        }
        if let operations = jwk["key_ops"], operations != .null {
            guard let list = operations.arrayValue, list.contains(where: { $0.stringValue == "decrypt" }) else {
                throw .malformed("file.key.key_ops does not allow decrypt")
            }
        }
        guard let k = jwk["k"]?.stringValue, let key = try? Base64.decodeURLSafe(k), key.count == AES256CTR.keyByteCount else {
            throw .malformed("file.key.k is not 32 bytes of base64url")
        }
        guard let ivText = json["iv"]?.stringValue, let iv = try? Base64.decode(ivText), iv.count == AES256CTR.ivByteCount else {
            throw .malformed("file.iv is not 16 bytes of base64")
        }
        guard let hashText = json["hashes"]?["sha256"]?.stringValue, let hash = try? Base64.decode(hashText), hash.count == SHA256.byteCount else {
            throw .malformed("file.hashes.sha256 is not 32 bytes of base64")
        }
        self.init(url: try MediaURI(url), key: key, iv: iv, sha256: hash)
    }

    /// The JSON the store seals (the same shape as read).
    public var json: JSONValue {
        [
            "v": "v2", "url": .string(url.description),
            "key": ["kty": "oct", "alg": "A256CTR", "ext": true, "key_ops": ["encrypt", "decrypt"], "k": .string(Base64.encodeURLSafeUnpadded(key))],
            "iv": .string(Base64.encodeUnpadded(iv)), "hashes": ["sha256": .string(Base64.encodeUnpadded(sha256))],
        ]
    }

    /// Encrypts `plaintext` as the spec's encrypted attachments do (v2: a fresh 32-byte key, an IV of
    /// 8 random bytes and a zero counter): what a sender uploads, and tests build bundles with.
    public static func encrypt(_ plaintext: [UInt8], url: MediaURI) throws -> (file: EncryptedFile, ciphertext: [UInt8]) {
        let key = SecureRandom.bytes(count: AES256CTR.keyByteCount)
        let iv = SecureRandom.bytes(count: 8) + [UInt8](repeating: 0, count: 8)
        let ciphertext = try AES256CTR.transform(plaintext, key: key, iv: iv)
        return (EncryptedFile(url: url, key: key, iv: iv, sha256: SHA256.hash(ciphertext)), ciphertext)
    }

    /// Checks the downloaded ciphertext against `hashes.sha256` (in constant time) and decrypts it.
    ///
    /// - Throws: ``HistoryBundleFailure`` `hashMismatch` when the bytes are not the ones the sender uploaded.
    public func open(_ ciphertext: [UInt8]) throws(HistoryBundleFailure) -> [UInt8] {
        guard constantTimeEquals(SHA256.hash(ciphertext), sha256) else { throw .hashMismatch }
        do {
            return try AES256CTR.transform(ciphertext, key: key, iv: iv)
        } catch {
            throw .malformed("cannot decrypt: \(error)")
        }
    }
}
