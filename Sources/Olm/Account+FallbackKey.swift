internal import COlm

extension Account {
    /// Generates a new fallback key; the previous one is kept as the "old" key until forgotten.
    ///
    /// A fallback key lets peers start a session when every one-time key has been claimed.
    public func generateFallbackKey() throws(OlmError) {
        hasChanges = true
        let result = OlmRandom.withBytes(olm_account_generate_fallback_key_random_length(pointer)) {
            olm_account_generate_fallback_key(pointer, $0, $1)
        }
        try OlmError.check(result, lastError, "olm_account_generate_fallback_key")
    }

    /// The fallback key that has not been published yet, if any.
    public var unpublishedFallbackKey: OneTimeKey? {
        let (bytes, result) = OlmBytes.output(capacity: olm_account_unpublished_fallback_key_length(pointer)) {
            olm_account_unpublished_fallback_key(pointer, $0, $1)
        }
        precondition(result != olm_error(), "olm_account_unpublished_fallback_key failed")
        return Self.decodeKeyMap(bytes).first
    }

    /// Forgets the previous fallback key.
    ///
    /// Call after a grace period once a new fallback key was published, so that pre-key messages that
    /// peers built from the old key while the new one propagated can still be decrypted.
    public func forgetOldFallbackKey() {
        hasChanges = true
        olm_account_forget_old_fallback_key(pointer)
    }
}
