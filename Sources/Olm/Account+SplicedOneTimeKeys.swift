internal import COlm
import Primitives

extension Account {
    /// Adds `count` one-time keys the way libolm's `olm_account_generate_one_time_keys` does, with the
    /// public halves computed by libcrypto.
    ///
    /// libolm derives each public key with a generic Montgomery ladder: 149 µs a key here, 7.4 ms of the
    /// 9.2 ms an account with 50 signed one-time keys costs, which is what held provisioning under 150
    /// puppets/s (issue 12 point 4). libcrypto's fixed-base X25519 takes about 40 µs. libolm has no call
    /// that takes a key pair, so the account goes through its own pickle: sealed with a throw-away key,
    /// opened (``LibolmPickleEnvelope``), the new keys written in front of the list exactly as libolm
    /// would write them (``AccountPickleBody``: ids from the shared counter, newest first, unpublished,
    /// the oldest dropped beyond libolm's limit), sealed and unpickled into a fresh account whose state
    /// this one then takes. If anything fails the account is left as it was. The private keys are random
    /// bytes from the kernel, written straight into the only buffer that holds them, which is wiped.
    func spliceOneTimeKeys(count: Int) throws(OlmError) -> SpliceOutcome {
        guard count > 0 else { return .spliced }
        let ephemeral = try PickleKey(SecureRandom.bytes(count: PickleKey.byteCount))
        var body = try LibolmPickleEnvelope.open(try pickle(key: ephemeral), key: ephemeral)
        defer { secureWipe(&body) }
        guard let layout = try AccountPickleBody(body) else { return .unsupportedPickleVersion }
        var spliced = try layout.inserting(count, into: body, limit: maxNumberOfOneTimeKeys, writeKeyPair: AccountPickleBody.writeRandomKeyPair)
        defer { secureWipe(&spliced) }
        let rebuilt = try Account.unpickle(try LibolmPickleEnvelope.seal(spliced, key: ephemeral), key: ephemeral)
        adoptState(of: rebuilt)
        return .spliced
    }

    /// What ``spliceOneTimeKeys(count:)`` did.
    enum SpliceOutcome: Equatable {
        case spliced
        /// The pickle is not the version this code knows (another libolm); nothing was changed.
        case unsupportedPickleVersion
    }

    /// libolm's own generation, kept for pickles of a version ``AccountPickleBody`` does not know and
    /// for the tests that compare the two.
    func generateOneTimeKeysWithLibolm(count: Int) throws(OlmError) {
        guard count > 0 else { return }
        hasChanges = true
        let result = OlmRandom.withBytes(olm_account_generate_one_time_keys_random_length(pointer, count)) {
            olm_account_generate_one_time_keys(pointer, count, $0, $1)
        }
        try OlmError.check(result, lastError, "olm_account_generate_one_time_keys")
    }
}
