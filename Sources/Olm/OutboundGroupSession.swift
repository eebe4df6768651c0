internal import COlm

/// The sending side of a Megolm session: one per (room, sending device) until rotated.
///
/// Non-Sendable; persisted as a pickle. Every ``encrypt(_:)`` advances the ratchet: persist the new
/// pickle before the ciphertext leaves the process, or a crash could reuse a message index.
public final class OutboundGroupSession {
    let memory: OlmMemory
    var pointer: OpaquePointer

    private init() {
        memory = OlmMemory(size: olm_outbound_group_session_size())
        pointer = olm_outbound_group_session(memory.raw)
    }

    deinit {
        memory.release { _ = olm_clear_outbound_group_session(pointer) }
    }

    var lastError: OlmErrorCode { olm_outbound_group_session_last_error_code(pointer) }

    /// Creates a new session with a random ratchet and signing key.
    public static func create() throws(OlmError) -> OutboundGroupSession {
        let session = OutboundGroupSession()
        let result = OlmRandom.withBytes(olm_init_outbound_group_session_random_length(session.pointer)) {
            olm_init_outbound_group_session(session.pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        try OlmError.check(result, session.lastError, "olm_init_outbound_group_session")
        return session
    }

    /// Restores a session from ``pickle(key:)`` output.
    public static func unpickle(_ pickle: String, key: PickleKey) throws(OlmError) -> OutboundGroupSession {
        let session = OutboundGroupSession()
        try Pickling.unpickle(
            pickle, key: key, operation: "olm_unpickle_outbound_group_session", lastError: { session.lastError }
        ) { olm_unpickle_outbound_group_session(session.pointer, $0, $1, $2, $3) }
        return session
    }

    /// The session's full state, encrypted with `key`, as base64.
    public func pickle(key: PickleKey) throws(OlmError) -> String {
        try Pickling.pickle(
            key: key, length: olm_pickle_outbound_group_session_length(pointer),
            operation: "olm_pickle_outbound_group_session", lastError: { lastError }
        ) { olm_pickle_outbound_group_session(pointer, $0, $1, $2, $3) }
    }

    /// The session id, shared by every inbound copy.
    public var sessionID: String {
        let (bytes, result) = OlmBytes.output(capacity: olm_outbound_group_session_id_length(pointer)) {
            olm_outbound_group_session_id(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        precondition(result != olm_error(), "olm_outbound_group_session_id failed")
        return OlmBytes.string(bytes)
    }

    /// The index the next encrypted message will carry.
    public var messageIndex: UInt32 { olm_outbound_group_session_message_index(pointer) }

    /// The `session_key` to share in `m.room_key`: decrypts from the current ``messageIndex`` on.
    public var sessionKey: String {
        let (bytes, result) = OlmBytes.output(capacity: olm_outbound_group_session_key_length(pointer)) {
            olm_outbound_group_session_key(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        precondition(result != olm_error(), "olm_outbound_group_session_key failed")
        return OlmBytes.string(bytes)
    }

    /// Encrypts `plaintext` (the JSON of `{type, content, room_id}`) and advances the ratchet.
    ///
    /// - Returns: The base64 `ciphertext` for `m.megolm.v1.aes-sha2` content.
    public func encrypt(_ plaintext: some Collection<UInt8>) throws(OlmError) -> String {
        let (bytes, result) = OlmBytes.withMutableCopy(of: plaintext) { input, count in
            OlmBytes.output(capacity: olm_group_encrypt_message_length(pointer, count)) {
                olm_group_encrypt(
                    pointer, input?.assumingMemoryBound(to: UInt8.self), count,
                    $0?.assumingMemoryBound(to: UInt8.self), $1)
            }
        }
        try OlmError.check(result, lastError, "olm_group_encrypt")
        return OlmBytes.string(bytes)
    }

    /// Encrypts the UTF-8 bytes of `plaintext`.
    public func encrypt(_ plaintext: String) throws(OlmError) -> String { try encrypt(plaintext.utf8) }
}
