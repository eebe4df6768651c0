internal import COlm

/// An Ed25519 signing key made from a 32-byte seed: the cross-signing master, self-signing and
/// user-signing keys.
///
/// Non-Sendable; the seed is what gets stored (encrypted), the object is rebuilt from it.
public final class PkSigning {
    let memory: OlmMemory
    var pointer: OpaquePointer
    /// The Ed25519 public key, unpadded base64.
    public let publicKey: String

    /// The seed length in bytes.
    public static var seedByteCount: Int { olm_pk_signing_seed_length() }

    /// A fresh random seed, from the system CSPRNG.
    public static func generateSeed() -> [UInt8] {
        OlmRandom.withBytes(olm_pk_signing_seed_length()) { buffer, count in
            Array(UnsafeRawBufferPointer(start: buffer, count: count))
        }
    }

    /// Rebuilds the key pair from `seed`.
    ///
    /// - Throws: `invalidArgument` unless the seed has ``seedByteCount`` bytes.
    public init(seed: [UInt8]) throws(OlmError) {
        guard seed.count == olm_pk_signing_seed_length() else {
            throw OlmError(code: .invalidArgument, operation: "PkSigning(seed of \(seed.count) bytes)")
        }
        memory = OlmMemory(size: olm_pk_signing_size())
        pointer = olm_pk_signing(memory.raw)
        let pointer = self.pointer
        let (bytes, result) = seed.withUnsafeBytes { seedBuffer in
            OlmBytes.output(capacity: olm_pk_signing_public_key_length()) {
                // Returns 0 on success rather than a length.
                let r = olm_pk_signing_key_from_seed(pointer, $0, $1, seedBuffer.baseAddress, seedBuffer.count)
                return r == olm_error() ? r : $1
            }
        }
        publicKey = OlmBytes.string(bytes)
        try OlmError.check(result, olm_pk_signing_last_error_code(pointer), "olm_pk_signing_key_from_seed")
    }

    deinit {
        memory.release { _ = olm_clear_pk_signing(pointer) }
    }

    /// Signs `message`, returning an unpadded base64 Ed25519 signature.
    public func sign(_ message: some Collection<UInt8>) -> String {
        let (bytes, result) = OlmBytes.withMutableCopy(of: message) { input, count in
            OlmBytes.output(capacity: olm_pk_signature_length()) {
                olm_pk_sign(
                    pointer, input?.assumingMemoryBound(to: UInt8.self), count,
                    $0?.assumingMemoryBound(to: UInt8.self), $1)
            }
        }
        precondition(result != olm_error(), "olm_pk_sign failed")
        return OlmBytes.string(bytes)
    }

    /// Signs the UTF-8 bytes of `message`.
    public func sign(_ message: String) -> String { sign(message.utf8) }
}
