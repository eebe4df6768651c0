import MatrixModels
import Primitives

/// One secret encrypted with `m.secret_storage.v1.aes-hmac-sha2`: the `{iv, ciphertext, mac}` object
/// that account data holds under `encrypted.<key id>`.
///
/// Written in unpadded base64 like every binary field in Matrix (mautrix writes it so; Element writes
/// padded), and read in either form.
public struct EncryptedSecret: Sendable, Hashable {
    public var iv: [UInt8]
    public var ciphertext: [UInt8]
    public var mac: [UInt8]

    public init(iv: [UInt8], ciphertext: [UInt8], mac: [UInt8]) {
        self.iv = iv
        self.ciphertext = ciphertext
        self.mac = mac
    }

    /// The JSON object `{"iv", "ciphertext", "mac"}`.
    public var json: JSONValue {
        [
            "iv": .string(Base64.encodeUnpadded(iv)), "ciphertext": .string(Base64.encodeUnpadded(ciphertext)),
            "mac": .string(Base64.encodeUnpadded(mac)),
        ]
    }

    /// Reads `{"iv", "ciphertext", "mac"}`.
    ///
    /// - Parameter what: Names the object in errors (e.g. the secret's name).
    /// - Throws: `malformed` for a missing or non-base64 field or an IV that is not 16 bytes.
    public init(json: JSONValue, what: String) throws(SecretStorageError) {
        func field(_ name: String) throws(SecretStorageError) -> [UInt8] {
            guard let text = json[name]?.stringValue else {
                throw SecretStorageError(.malformed, "\(what) has no string \"\(name)\"")
            }
            do {
                return try Base64.decode(text)
            } catch {
                throw SecretStorageError(.malformed, "\(what): \"\(name)\" is not base64 (\(error.message))")
            }
        }
        iv = try field("iv")
        ciphertext = try field("ciphertext")
        mac = try field("mac")
        guard iv.count == AES256CTR.ivByteCount else {
            throw SecretStorageError(.malformed, "\(what): the IV has \(iv.count) bytes, not \(AES256CTR.ivByteCount)")
        }
    }
}

/// The `m.secret_storage.v1.aes-hmac-sha2` construction, on raw key bytes.
enum AESHMACSHA2 {
    /// HKDF-SHA-256 of the key with 32 zero bytes of salt and the secret's name as info, split into
    /// an AES-256 key and an HMAC-SHA-256 key: every secret name gets its own pair.
    static func keys(_ key: [UInt8], name: String) -> (aes: [UInt8], mac: [UInt8]) {
        let derived: [UInt8]
        do {
            derived = try HKDFSHA256.deriveKey(from: key, salt: [UInt8](repeating: 0, count: 32), info: Array(name.utf8), outputByteCount: 64)
        } catch {
            fatalError("HKDF-SHA-256 with a fixed output length failed: \(error)")
        }
        return (Array(derived[0..<32]), Array(derived[32..<64]))
    }

    /// Encrypts with a fresh IV whose bit 63 is clear (as the spec asks, so the 64-bit counter half
    /// cannot overflow into the random half in implementations that count that way).
    static func encrypt(_ plaintext: [UInt8], key: [UInt8], name: String) -> EncryptedSecret {
        var iv = SecureRandom.bytes(count: AES256CTR.ivByteCount)
        iv[8] &= 0x7F
        return encrypt(plaintext, key: key, name: name, iv: iv)
    }

    static func encrypt(_ plaintext: [UInt8], key: [UInt8], name: String, iv: [UInt8]) -> EncryptedSecret {
        var (aesKey, macKey) = keys(key, name: name)
        defer {
            secureWipe(&aesKey)
            secureWipe(&macKey)
        }
        let ciphertext: [UInt8]
        do {
            ciphertext = try AES256CTR.transform(plaintext, key: aesKey, iv: iv)
        } catch {
            fatalError("AES-256-CTR with checked key and IV lengths failed: \(error)")
        }
        return EncryptedSecret(iv: iv, ciphertext: ciphertext, mac: HMACSHA256.authenticationCode(for: ciphertext, key: macKey))
    }

    /// Checks the MAC (in constant time) before decrypting anything.
    static func decrypt(_ secret: EncryptedSecret, key: [UInt8], name: String) throws(SecretStorageError) -> [UInt8] {
        var (aesKey, macKey) = keys(key, name: name)
        defer {
            secureWipe(&aesKey)
            secureWipe(&macKey)
        }
        guard HMACSHA256.isValid(secret.mac, for: secret.ciphertext, key: macKey) else {
            throw SecretStorageError(.authenticationFailed, "\(name) does not verify under this key: altered, or encrypted with another key")
        }
        do {
            return try AES256CTR.transform(secret.ciphertext, key: aesKey, iv: secret.iv)
        } catch {
            throw SecretStorageError(.malformed, "\(name): \(error.message)")
        }
    }
}
