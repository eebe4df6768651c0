import Olm
import Primitives

/// The keys that protect Sealbridge's secrets at rest, all derived from the operator's `pickle_key`.
///
/// HKDF-SHA256 separates purposes so that one derived key never serves two uses: libolm pickles are
/// encrypted with ``pickleKey``; other private material (cross-signing seeds, backup keys) is sealed
/// with AES-256-GCM under a second key, bound to what it is by the associated data. A database dump
/// without the configured secret therefore reveals no key.
public struct StoreCipher: Sendable {
    /// Fixed salt: the secret is already high-entropy, the salt only versions the derivation.
    static let salt = Array("sealbridge store v1".utf8)

    /// Encrypts every libolm pickle (accounts, Olm and Megolm sessions).
    public let pickleKey: PickleKey
    private let sealKey: [UInt8]

    /// - Parameter secret: The configured `encryption.pickle_key` (at least 32 bytes of entropy).
    /// - Throws: ``CryptoError`` with `invalidSecret` if the secret is shorter than 32 bytes.
    public init(secret: String) throws(CryptoError) {
        let material = Array(secret.utf8)
        guard material.count >= 32 else {
            throw CryptoError(code: .invalidSecret, message: "the store secret must hold at least 32 bytes")
        }
        do {
            pickleKey = try PickleKey(
                HKDFSHA256.deriveKey(from: material, salt: Self.salt, info: Array("olm pickle".utf8), outputByteCount: 32))
            sealKey = try HKDFSHA256.deriveKey(from: material, salt: Self.salt, info: Array("sealed secret".utf8), outputByteCount: 32)
        } catch {
            throw CryptoError(code: .invalidSecret, message: "key derivation failed: \(error)")
        }
    }

    /// Encrypts `secret` for storage; `context` (e.g. `"cross-signing master @bot:hs"`) must match on open.
    public func seal(_ secret: [UInt8], context: String) throws(CryptoError) -> [UInt8] {
        do {
            return try AES256GCM.seal(secret, key: sealKey, authenticating: Array(context.utf8)).combined
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "sealing failed: \(error.code)")
        }
    }

    /// Decrypts what ``seal(_:context:)`` produced.
    ///
    /// - Throws: `storeCorrupted` when the data was altered, sealed for another context, or under
    ///   another secret (the operator changed `pickle_key`).
    public func open(_ sealed: [UInt8], context: String) throws(CryptoError) -> [UInt8] {
        do {
            return try AES256GCM.open(AES256GCM.SealedBox(combined: sealed), key: sealKey, authenticating: Array(context.utf8))
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "cannot open sealed secret for \(context): wrong pickle_key or altered data")
        }
    }
}
