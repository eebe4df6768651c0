import Olm
import Primitives

/// The keys derived from one store secret (an `encryption.pickle_key`): its public id, the two
/// master keys that per-record keys are derived from, and the version-1 keys for rows written before
/// records carried a key id.
///
/// HKDF-SHA256 separates purposes so that one derived key never serves two uses. The id is derived
/// too (a one-way function of the secret), so printing or storing it reveals nothing usable.
struct StoreKey: Sendable {
    /// Salt of the version-2 derivations; versions them, the secret itself is high-entropy.
    static let salt = Array("sealbridge store v2".utf8)
    /// Salt of the version-1 derivation (rows without a key id).
    static let legacySalt = Array("sealbridge store v1".utf8)
    /// Bytes of ``id``.
    static let idByteCount = 8

    /// A non-secret fingerprint of the secret, stored in every version-2 record.
    let id: [UInt8]
    /// ``id`` as 16 lowercase hex digits, as records, logs and error messages show it.
    let idText: String
    private let pickleMaster: [UInt8]
    private let sealMaster: [UInt8]
    /// Version 1: one pickle key and one seal key for every record.
    let legacyPickleKey: PickleKey
    let legacySealKey: [UInt8]

    /// - Throws: `invalidSecret` if the secret is shorter than 32 bytes.
    init(secret: String) throws(CryptoError) {
        let material = Array(secret.utf8)
        guard material.count >= 32 else {
            throw CryptoError(code: .invalidSecret, message: "the store secret must hold at least 32 bytes")
        }
        do {
            id = try HKDFSHA256.deriveKey(from: material, salt: Self.salt, info: Array("key id".utf8), outputByteCount: Self.idByteCount)
            pickleMaster = try HKDFSHA256.deriveKey(from: material, salt: Self.salt, info: Array("olm pickle master".utf8), outputByteCount: 32)
            sealMaster = try HKDFSHA256.deriveKey(from: material, salt: Self.salt, info: Array("sealed secret master".utf8), outputByteCount: 32)
            legacyPickleKey = try PickleKey(
                HKDFSHA256.deriveKey(from: material, salt: Self.legacySalt, info: Array("olm pickle".utf8), outputByteCount: 32))
            legacySealKey = try HKDFSHA256.deriveKey(
                from: material, salt: Self.legacySalt, info: Array("sealed secret".utf8), outputByteCount: 32)
        } catch {
            throw CryptoError(code: .invalidSecret, message: "key derivation failed: \(error)")
        }
        idText = Hex.encode(id)
    }

    /// The libolm pickle key of one record: HKDF(pickle master, the record's random salt).
    func pickleKey(salt: [UInt8]) throws(CryptoError) -> PickleKey {
        do {
            return try PickleKey(Self.hkdf(pickleMaster, salt: salt, info: Self.pickleInfo))
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "pickle key derivation failed")
        }
    }

    /// The AES-256-GCM key of one sealed record: HKDF(seal master, the record's random salt).
    ///
    /// A fresh key per record keeps every key far below AES-GCM's safe number of messages with
    /// random nonces (2³²), however many rows are ever sealed.
    func sealKey(salt: [UInt8]) -> [UInt8] {
        Self.hkdf(sealMaster, salt: salt, info: Self.sealInfo)
    }

    static let pickleInfo = Array("sb2 olm pickle".utf8)
    static let sealInfo = Array("sb2 sealed secret".utf8)

    /// HKDF-SHA256 (RFC 5869) for one 32-byte block: PRK = HMAC(salt, master), key = HMAC(PRK, info ‖ 0x01).
    ///
    /// The same output as ``HKDFSHA256/deriveKey(from:salt:info:outputByteCount:)`` (a test checks it)
    /// in two one-shot HMACs: about 25 times cheaper than going through libcrypto's KDF objects, and
    /// this runs for every pickle the ingest path reads or writes.
    static func hkdf(_ master: [UInt8], salt: [UInt8], info: [UInt8]) -> [UInt8] {
        let prk = HMACSHA256.authenticationCode(for: master, key: salt)
        return HMACSHA256.authenticationCode(for: info + [1], key: prk)
    }
}
