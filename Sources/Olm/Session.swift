internal import COlm

/// An Olm session: a double ratchet between two devices, used for to-device messages.
///
/// Non-Sendable: owned by one actor, persisted as a pickle. Decryption leaves the ratchet untouched when
/// it fails (libolm works on a copy of the chain and keeps it only if the MAC verifies).
public final class Session {
    let memory: OlmMemory
    var pointer: OpaquePointer

    private init() {
        memory = OlmMemory(size: olm_session_size())
        pointer = olm_session(memory.raw)
    }

    deinit {
        memory.release { _ = olm_clear_session(pointer) }
    }

    var lastError: OlmErrorCode { olm_session_last_error_code(pointer) }

    /// Starts a session to a device from its identity key and one of its one-time (or fallback) keys.
    public static func outbound(
        account: Account, theirIdentityKey: String, theirOneTimeKey: String
    ) throws(OlmError) -> Session {
        let session = Session()
        let identity = Array(theirIdentityKey.utf8), oneTime = Array(theirOneTimeKey.utf8)
        let result = identity.withUnsafeBytes { id in
            oneTime.withUnsafeBytes { otk in
                OlmRandom.withBytes(olm_create_outbound_session_random_length(session.pointer)) {
                    olm_create_outbound_session(
                        session.pointer, account.pointer, id.baseAddress, id.count, otk.baseAddress, otk.count, $0, $1)
                }
            }
        }
        try OlmError.check(result, session.lastError, "olm_create_outbound_session")
        return session
    }

    /// Creates the receiving side of a session from a pre-key message.
    ///
    /// Does not decrypt and does not remove the one-time key: call ``decrypt(_:)`` and then
    /// ``Account/removeOneTimeKeys(usedBy:)`` once the whole change can be persisted together.
    /// - Parameter theirIdentityKey: When given, the message must come from this Curve25519 key.
    public static func inbound(
        account: Account, preKeyMessage: OlmMessage, theirIdentityKey: String? = nil
    ) throws(OlmError) -> Session {
        guard preKeyMessage.kind == .preKey else {
            throw OlmError(code: .badMessageFormat, operation: "olm_create_inbound_session (not a pre-key message)")
        }
        let session = Session()
        let result = OlmBytes.withMutableCopy(of: preKeyMessage.ciphertext.utf8) { message, count in
            if let theirIdentityKey {
                Array(theirIdentityKey.utf8).withUnsafeBytes { id in
                    olm_create_inbound_session_from(
                        session.pointer, account.pointer, id.baseAddress, id.count, message, count)
                }
            } else {
                olm_create_inbound_session(session.pointer, account.pointer, message, count)
            }
        }
        try OlmError.check(result, session.lastError, "olm_create_inbound_session")
        return session
    }

    /// Restores a session from ``pickle(key:)`` output.
    public static func unpickle(_ pickle: String, key: PickleKey) throws(OlmError) -> Session {
        let session = Session()
        try Pickling.unpickle(pickle, key: key, operation: "olm_unpickle_session", lastError: { session.lastError }) {
            olm_unpickle_session(session.pointer, $0, $1, $2, $3)
        }
        return session
    }

    /// The session's full state, encrypted with `key`, as base64.
    public func pickle(key: PickleKey) throws(OlmError) -> String {
        try Pickling.pickle(
            key: key, length: olm_pickle_session_length(pointer), operation: "olm_pickle_session",
            lastError: { lastError }
        ) { olm_pickle_session(pointer, $0, $1, $2, $3) }
    }

    /// The session's id: the same on both devices.
    public var sessionID: String {
        let (bytes, result) = OlmBytes.output(capacity: olm_session_id_length(pointer)) {
            olm_session_id(pointer, $0, $1)
        }
        precondition(result != olm_error(), "olm_session_id failed")
        return OlmBytes.string(bytes)
    }

    /// Whether this session has decrypted a message from the other side (then it stops sending pre-key messages).
    public var hasReceivedMessage: Bool { olm_session_has_received_message(pointer) != 0 }

    /// Whether `preKeyMessage` was encrypted for this session (so it should be decrypted here, not with a new one).
    ///
    /// A malformed message simply does not match.
    public func matchesInbound(_ preKeyMessage: OlmMessage, theirIdentityKey: String? = nil) -> Bool {
        guard preKeyMessage.kind == .preKey else { return false }
        let result = OlmBytes.withMutableCopy(of: preKeyMessage.ciphertext.utf8) { message, count in
            if let theirIdentityKey {
                Array(theirIdentityKey.utf8).withUnsafeBytes { id in
                    olm_matches_inbound_session_from(pointer, id.baseAddress, id.count, message, count)
                }
            } else {
                olm_matches_inbound_session(pointer, message, count)
            }
        }
        return result == 1
    }
}
