internal import COlm
import Foundation

extension Account {
    /// The most one-time keys libolm keeps; generating more discards the oldest.
    public var maxNumberOfOneTimeKeys: Int { olm_account_max_number_of_one_time_keys(pointer) }

    /// Generates `count` new one-time keys (unpublished until ``markKeysAsPublished()``).
    ///
    /// The same keys libolm would make, about 3.5 times faster: see ``spliceOneTimeKeys(count:)``.
    public func generateOneTimeKeys(count: Int) throws(OlmError) {
        guard count > 0 else { return }
        if try spliceOneTimeKeys(count: count) == .unsupportedPickleVersion {
            try generateOneTimeKeysWithLibolm(count: count)
        }
    }

    /// The one-time keys not yet marked as published, sorted by key id.
    public var unpublishedOneTimeKeys: [OneTimeKey] {
        let (bytes, result) = OlmBytes.output(capacity: olm_account_one_time_keys_length(pointer)) {
            olm_account_one_time_keys(pointer, $0, $1)
        }
        precondition(result != olm_error(), "olm_account_one_time_keys failed")
        return Self.decodeKeyMap(bytes)
    }

    /// Marks every current one-time key and the fallback key as published.
    ///
    /// Call only after the homeserver accepted the upload: an unpublished key is uploaded again next time.
    public func markKeysAsPublished() {
        _ = olm_account_mark_keys_as_published(pointer)
    }

    /// Removes the one-time key that `session` was created from, so it cannot be used twice.
    ///
    /// A session built on the fallback key succeeds here but leaves the fallback key in place: it stays
    /// usable until rotated and forgotten.
    /// - Throws: `badMessageKeyID` when the session used none of this account's keys.
    public func removeOneTimeKeys(usedBy session: Session) throws(OlmError) {
        try OlmError.check(olm_remove_one_time_keys(pointer, session.pointer), lastError, "olm_remove_one_time_keys")
    }

    /// Decodes libolm's `{"curve25519": {"ID": "key", …}}` into sorted keys.
    static func decodeKeyMap(_ bytes: [UInt8]) -> [OneTimeKey] {
        guard let map = try? JSONDecoder().decode([String: [String: String]].self, from: Data(bytes)) else {
            preconditionFailure("libolm returned a key map that is not the documented JSON")
        }
        return (map["curve25519"] ?? [:])
            .map { OneTimeKey(keyID: $0.key, publicKey: $0.value) }
            .sorted { $0.keyID < $1.keyID }
    }
}
