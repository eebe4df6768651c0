import MatrixModels

/// Why an encrypted message was not turned into plaintext: typed, so the caller can react (re-request
/// a key, park the event, recover a wedged session) and tell the bridge logic why.
public enum DecryptionFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not an algorithm Sealbridge speaks.
    case unsupportedAlgorithm(String)
    /// The event lacks a field or has the wrong shape.
    case malformed(String)
    /// The Olm message has no ciphertext for our device's curve25519 key.
    case notForThisDevice
    /// No existing session decrypts it and it is not a pre-key message: the session is wedged.
    case wedgedSession(sender: UserID, senderKey: String)
    /// libolm refused the message (bad MAC, unknown one-time key …).
    case olm(OlmFailureDetail)
    /// The decrypted payload's `sender`, `recipient` or `recipient_keys` do not match the envelope.
    case payloadMismatch(String)
    /// The sender's keys could not be tied to a device of the claimed sender.
    case unverifiedSender(String)
    /// No inbound Megolm session with that id is known (yet): park the event.
    case unknownSession(sessionID: String)
    /// The session is known only from a later index than the message's.
    case unknownMessageIndex(sessionID: String, firstKnownIndex: UInt32)
    /// The same (session, index) was already used by another event: a replay attack.
    case replay(sessionID: String, messageIndex: UInt32, firstEventID: String)
    /// The payload says another room than the event arrived in.
    case roomMismatch(expected: String, found: String)
    /// The sender told us (`m.room_key.withheld`) it will not share this session's key.
    case withheld(code: String, reason: String?)
    /// An `m.forwarded_room_key` we did not ask for: accepting it would let anyone plant keys.
    case forwardedKeyRefused(String)
    /// The stored session does not open (damaged, or sealed under another pickle key): only the
    /// events of this session fail.
    case unreadableSession(sessionID: String)
    /// The local device's account does not open (damaged, or sealed under another pickle key): only
    /// the messages for that device fail.
    case unreadableAccount(UserID)
    /// Decrypted, but the device that shared the key is below `encryption.accept_from`: refused,
    /// with its level at decryption.
    case untrustedDevice(DeviceTrust)

    public var description: String {
        switch self {
        case .unsupportedAlgorithm(let algorithm): "unsupported algorithm \(algorithm)"
        case .malformed(let detail): "malformed: \(detail)"
        case .notForThisDevice: "no ciphertext for this device"
        case .wedgedSession(let sender, _): "no Olm session with \(sender) decrypts this (wedged)"
        case .olm(let detail): "libolm: \(detail.code)"
        case .payloadMismatch(let detail): "payload mismatch: \(detail)"
        case .unverifiedSender(let detail): "unverified sender: \(detail)"
        case .unknownSession(let id): "unknown Megolm session \(id)"
        case .unknownMessageIndex(let id, let first): "session \(id) known only from index \(first)"
        case .replay(let id, let index, let first) where first.isEmpty:
            "replayed index \(index) of session \(id) (an index below what the pruned replay ledger still lists)"
        case .replay(let id, let index, let first): "replayed index \(index) of session \(id) (first seen in \(first))"
        case .roomMismatch(let expected, let found): "payload is for room \(found), event is in \(expected)"
        case .withheld(let code, let reason): "key withheld by the sender: \(code)\(reason.map { " (\($0))" } ?? "")"
        case .forwardedKeyRefused(let detail): "forwarded room key refused: \(detail)"
        case .unreadableSession(let id): "the stored session \(id) does not open (wrong pickle_key or damaged row)"
        case .unreadableAccount(let user): "the account of \(user) does not open (wrong pickle_key or damaged row)"
        case .untrustedDevice(let trust): "the sender's device is \(trust), below the accept_from policy"
        }
    }
}

/// libolm's refusal, kept as a plain value so ``DecryptionFailure`` stays Hashable without importing Olm types.
public struct OlmFailureDetail: Sendable, Hashable {
    public var code: String
    public var operation: String
}
