internal import COlm
import Primitives

/// The receiving side of a Megolm session, created from a shared or exported session key.
///
/// Non-Sendable; persisted as a pickle. Decryption does not detect replays by itself: it returns the
/// message index, and the caller rejects a (session, index) it has already seen with another event id.
public final class InboundGroupSession {
    let memory: OlmMemory
    var pointer: OpaquePointer
    /// The session's ratchets read out for libcrypto (``MegolmReceiver``), at the first decrypt; nil
    /// when they could not be read, and then libolm decrypts every message.
    private lazy var receiver: MegolmReceiver? = makeReceiver()
    /// Whether ``MegolmReceiver`` decrypted a message: what libolm's flag would say had libolm done it.
    private var receiverDecrypted = false

    private init() {
        memory = OlmMemory(size: olm_inbound_group_session_size())
        pointer = olm_inbound_group_session(memory.raw)
    }

    deinit {
        memory.release { _ = olm_clear_inbound_group_session(pointer) }
    }

    var lastError: OlmErrorCode { olm_inbound_group_session_last_error_code(pointer) }

    /// Creates a session from an `m.room_key` `session_key` (signed by the sender's Megolm key).
    public convenience init(sessionKey: String) throws(OlmError) {
        self.init()
        let result = OlmBytes.withMutableCopy(of: sessionKey.utf8) {
            olm_init_inbound_group_session(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        try OlmError.check(result, lastError, "olm_init_inbound_group_session")
    }

    /// Creates a session from an exported key (key backup, `m.forwarded_room_key`, key export files).
    public convenience init(importing exportedKey: String) throws(OlmError) {
        self.init()
        let result = OlmBytes.withMutableCopy(of: exportedKey.utf8) {
            olm_import_inbound_group_session(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        try OlmError.check(result, lastError, "olm_import_inbound_group_session")
    }

    /// Restores a session from ``pickle(key:)`` output.
    public static func unpickle(_ pickle: String, key: PickleKey) throws(OlmError) -> InboundGroupSession {
        let session = InboundGroupSession()
        try Pickling.unpickle(
            pickle, key: key, operation: "olm_unpickle_inbound_group_session", lastError: { session.lastError }
        ) { olm_unpickle_inbound_group_session(session.pointer, $0, $1, $2, $3) }
        return session
    }

    /// The session's full state, encrypted with `key`, as base64.
    public func pickle(key: PickleKey) throws(OlmError) -> String {
        try Pickling.pickle(
            key: key, length: olm_pickle_inbound_group_session_length(pointer),
            operation: "olm_pickle_inbound_group_session", lastError: { lastError }
        ) { olm_pickle_inbound_group_session(pointer, $0, $1, $2, $3) }
    }

    /// The session id (equals the outbound session's).
    public var sessionID: String {
        let (bytes, result) = OlmBytes.output(capacity: olm_inbound_group_session_id_length(pointer)) {
            olm_inbound_group_session_id(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        precondition(result != olm_error(), "olm_inbound_group_session_id failed")
        return OlmBytes.string(bytes)
    }

    /// The first message index this session can decrypt.
    public var firstKnownIndex: UInt32 { olm_inbound_group_session_first_known_index(pointer) }

    /// Whether a message signed by the session's key has been decrypted, or it came from a signed `session_key`
    /// (as opposed to an unauthenticated export). A decrypt by ``MegolmReceiver`` counts as libolm's
    /// would, but is not in a pickle made afterwards (nothing reads the flag back from a pickle).
    public var isVerified: Bool { receiverDecrypted || olm_inbound_group_session_is_verified(pointer) != 0 }

    /// A decrypted Megolm message.
    public struct Decrypted: Sendable, Hashable {
        /// The plaintext bytes (the JSON of `{type, content, room_id}`).
        public var plaintext: [UInt8]
        /// The ratchet index the message was encrypted at: the key for replay detection.
        public var messageIndex: UInt32
    }

    /// Decrypts a Megolm `ciphertext` and verifies its signature.
    ///
    /// Tries ``MegolmReceiver`` first (libcrypto's AES and HMAC, libolm's signature check), which
    /// decides only where libolm's answer would be the same; libolm's `olm_group_decrypt` does the rest.
    ///
    /// - Throws: `unknownMessageIndex` if the message precedes ``firstKnownIndex``, `badSignature`,
    ///   `badMessageMAC`, `invalidBase64`, `badMessageFormat`, `badMessageVersion`.
    public func decrypt(_ ciphertext: String) throws(OlmError) -> Decrypted {
        switch receiver?.decrypt(ciphertext) ?? .undecided {
        case .decrypted(let decrypted):
            receiverDecrypted = true
            return decrypted
        case .failed(let code): throw OlmError(code: code, operation: "olm_group_decrypt")
        case .undecided: return try decryptWithLibolm(ciphertext)
        }
    }

    /// libolm's `olm_group_decrypt` alone: what ``decrypt(_:)`` falls back to for what
    /// ``MegolmReceiver`` leaves undecided, and what `scripts/bench` measures as the libolm ceiling.
    public func decryptWithLibolm(_ ciphertext: String) throws(OlmError) -> Decrypted {
        let maxLength = OlmBytes.withMutableCopy(of: ciphertext.utf8) {
            olm_group_decrypt_max_plaintext_length(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1)
        }
        try OlmError.check(maxLength, lastError, "olm_group_decrypt_max_plaintext_length")
        var index: UInt32 = 0
        let (bytes, result) = OlmBytes.withMutableCopy(of: ciphertext.utf8) { input, count in
            OlmBytes.output(capacity: maxLength) {
                olm_group_decrypt(
                    pointer, input?.assumingMemoryBound(to: UInt8.self), count,
                    $0?.assumingMemoryBound(to: UInt8.self), $1, &index)
            }
        }
        try OlmError.check(result, lastError, "olm_group_decrypt")
        return Decrypted(plaintext: bytes, messageIndex: index)
    }

    /// The message index a Megolm ciphertext's unencrypted header names, without decrypting it or
    /// decoding more than its first 16 characters (``MegolmMessage``'s reading of the header); nil if
    /// the header is not in the shape libolm and vodozemac write.
    public static func messageIndex(of ciphertext: String) -> UInt32? {
        guard ciphertext.utf8.count >= 16, let header = try? Base64.decode(String(ciphertext.prefix(16))) else { return nil }
        return MegolmMessage.messageIndex(in: header, end: header.count)?.0
    }

    /// Reads this session's ratchets out of its pickle (under a throw-away key) for ``MegolmReceiver``.
    func makeReceiver() -> MegolmReceiver? {
        guard let key = try? PickleKey(SecureRandom.bytes(count: PickleKey.byteCount)),
            let pickle = try? pickle(key: key), var body = try? LibolmPickleEnvelope.open(pickle, key: key)
        else { return nil }
        defer { secureWipe(&body) }
        return MegolmReceiver(pickleBody: body)
    }

    /// Exports the session from `messageIndex` on, for forwarding or backup.
    ///
    /// - Throws: `unknownMessageIndex` if `messageIndex` precedes ``firstKnownIndex``.
    public func export(at messageIndex: UInt32) throws(OlmError) -> String {
        let (bytes, result) = OlmBytes.output(capacity: olm_export_inbound_group_session_length(pointer)) {
            olm_export_inbound_group_session(pointer, $0?.assumingMemoryBound(to: UInt8.self), $1, messageIndex)
        }
        try OlmError.check(result, lastError, "olm_export_inbound_group_session")
        return OlmBytes.string(bytes)
    }
}
