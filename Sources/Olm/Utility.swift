internal import COlm

/// Stateless libolm helpers: SHA-256 and Ed25519 signature checks.
public enum Utility {
    /// Runs `body` with a scratch `OlmUtility`, cleared afterwards.
    private static func withUtility<R>(_ body: (OpaquePointer) -> R) -> R {
        let memory = OlmMemory(size: olm_utility_size())
        let utility = olm_utility(memory.raw)!
        defer { memory.release { _ = olm_clear_utility(utility) } }
        return body(utility)
    }

    /// SHA-256 of `data`, as unpadded base64.
    public static func sha256(_ data: some Collection<UInt8>) -> String {
        withUtility { utility in
            let (bytes, result) = OlmBytes.withMutableCopy(of: data) { input, count in
                OlmBytes.output(capacity: olm_sha256_length(utility)) { olm_sha256(utility, input, count, $0, $1) }
            }
            precondition(result != olm_error(), "olm_sha256 failed")
            return OlmBytes.string(bytes)
        }
    }

    /// Checks an Ed25519 `signature` (base64) by `key` (base64) over `message`.
    ///
    /// - Throws: `badSignature` when the signature does not verify (libolm reports it as a bad MAC; this
    ///   wrapper says what it is), `invalidBase64` for a malformed key or signature.
    public static func verifyEd25519(
        key: String, message: some Collection<UInt8>, signature: String
    ) throws(OlmError) {
        var code = OlmErrorCode(0)
        let result = withUtility { utility in
            let keyBytes = Array(key.utf8)
            let r = keyBytes.withUnsafeBytes { keyBuffer in
                OlmBytes.withMutableCopy(of: message) { input, count in
                    OlmBytes.withMutableCopy(of: signature.utf8) { sig, sigCount in
                        olm_ed25519_verify(utility, keyBuffer.baseAddress, keyBuffer.count, input, count, sig, sigCount)
                    }
                }
            }
            code = olm_utility_last_error_code(utility)
            return r
        }
        do {
            try OlmError.check(result, code, "olm_ed25519_verify")
        } catch where error.code == .badMessageMAC {
            throw OlmError(code: .badSignature, operation: "olm_ed25519_verify")
        }
    }

    /// The linked libolm version, e.g. `3.2.13`.
    public static var libraryVersion: String {
        var major: UInt8 = 0, minor: UInt8 = 0, patch: UInt8 = 0
        olm_get_library_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
