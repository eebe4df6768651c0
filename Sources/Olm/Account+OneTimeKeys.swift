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
        hasChanges = true
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
        hasChanges = true
        _ = olm_account_mark_keys_as_published(pointer)
    }

    /// Removes the one-time key that `session` was created from, so it cannot be used twice.
    ///
    /// A session built on the fallback key succeeds here but leaves the fallback key in place: it stays
    /// usable until rotated and forgotten.
    /// - Throws: `badMessageKeyID` when the session used none of this account's keys.
    public func removeOneTimeKeys(usedBy session: Session) throws(OlmError) {
        hasChanges = true
        try OlmError.check(olm_remove_one_time_keys(pointer, session.pointer), lastError, "olm_remove_one_time_keys")
    }

    /// Decodes libolm's `{"curve25519": {"ID": "key", …}}` into sorted keys.
    ///
    /// libolm writes this exact shape, without spaces or escapes (ids and keys are base64), so it is
    /// read by a plain scan; Foundation's JSONDecoder took ~1.5 % of provisioning's CPU here, twice per
    /// new device and under the lock when an upload is confirmed. Anything else goes to JSONDecoder.
    static func decodeKeyMap(_ bytes: [UInt8]) -> [OneTimeKey] {
        if let keys = scanKeyMap(bytes) { return keys.sorted { $0.keyID < $1.keyID } }
        guard let map = try? JSONDecoder().decode([String: [String: String]].self, from: Data(bytes)) else {
            preconditionFailure("libolm returned a key map that is not the documented JSON")
        }
        return (map["curve25519"] ?? [:])
            .map { OneTimeKey(keyID: $0.key, publicKey: $0.value) }
            .sorted { $0.keyID < $1.keyID }
    }

    /// `{"curve25519":{}}` or `{"curve25519":{"ID":"KEY",…}}` with base64 ids and keys; nil for anything else.
    static func scanKeyMap(_ bytes: [UInt8]) -> [OneTimeKey]? {
        let prefix = Array(#"{"curve25519":{"#.utf8)
        guard bytes.count >= prefix.count + 2, bytes.starts(with: prefix), bytes.suffix(2).elementsEqual([UInt8(ascii: "}"), UInt8(ascii: "}")]) else {
            return nil
        }
        let quote = UInt8(ascii: "\""), colon = UInt8(ascii: ":"), comma = UInt8(ascii: ",")
        let end = bytes.count - 2
        var position = prefix.count
        var keys: [OneTimeKey] = []
        func string() -> String? {
            guard position < end, bytes[position] == quote else { return nil }
            let start = position + 1
            var cursor = start
            while cursor < end, bytes[cursor] != quote {
                let byte = bytes[cursor]
                // Base64 only: no escapes, no controls, nothing that needs JSON's rules.
                guard byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                else { return nil }
                cursor += 1
            }
            guard cursor < end, cursor > start else { return nil }
            position = cursor + 1
            return String(decoding: bytes[start..<cursor], as: UTF8.self)
        }
        while position < end {
            guard let id = string(), position < end, bytes[position] == colon else { return nil }
            position += 1
            guard let key = string() else { return nil }
            keys.append(OneTimeKey(keyID: id, publicKey: key))
            if position < end {
                guard bytes[position] == comma else { return nil }
                position += 1
                guard position < end else { return nil }
            }
        }
        return keys
    }
}
