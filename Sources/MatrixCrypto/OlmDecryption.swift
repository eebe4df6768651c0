import MatrixModels
import Olm

/// Decrypts one `m.olm.v1.curve25519-aes-sha2` to-device message for one local device.
///
/// Tries every existing session with the sender's key first; only a pre-key message that none of them
/// matches creates a new inbound session, which the caller persists together with the account (whose
/// one-time key is removed here). Nothing is changed when decryption fails. A message that decrypts
/// but whose plaintext is not a JSON object still returns its session (genuine Olm advanced it),
/// with ``Decrypted/payloadFailure`` set: the caller keeps the session and refuses the payload.
public struct OlmDecryption {
    /// The plaintext payload and what changed.
    public struct Decrypted {
        /// The decrypted JSON: `type`, `content`, `sender`, `recipient`, `recipient_keys`, `keys`, …;
        /// `null` when ``payloadFailure`` is set.
        public var payload: JSONValue
        /// Why the plaintext is not a usable payload (not a JSON object), if it is not.
        public var payloadFailure: DecryptionFailure?
        /// The sender's curve25519 key (the envelope's `sender_key`).
        public var senderKey: String
        /// The session that decrypted it, ratchet advanced: persist it.
        public var session: Session
        /// True when the session was created from this pre-key message (the account changed too).
        public var createdSession: Bool
    }

    /// - Parameters:
    ///   - content: The to-device event's `content`.
    ///   - sender: The to-device event's `sender`.
    ///   - account: The receiving device's account; its one-time key is removed if a new session is made.
    ///   - sessions: Existing sessions with the sender key, most recently used first.
    public static func decrypt(
        content: JSONValue, sender: UserID, account: Account, sessions: [Session]
    ) throws(DecryptionFailure) -> Decrypted {
        let (senderKey, message) = try envelope(content, ourCurve25519: account.identityKeys.curve25519)
        if let decrypted = try decryptExisting(message, senderKey: senderKey, sender: sender, sessions: sessions) { return decrypted }
        return try decryptNewSession(message, senderKey: senderKey, account: account)
    }

    /// The Olm message in `content` addressed to our device (by its Curve25519 key), with the sender's key.
    public static func envelope(_ content: JSONValue, ourCurve25519: String) throws(DecryptionFailure) -> (senderKey: String, message: OlmMessage) {
        guard let algorithm = content["algorithm"]?.stringValue else { throw .malformed("no algorithm") }
        guard algorithm == EncryptionAlgorithm.olm else { throw .unsupportedAlgorithm(algorithm) }
        guard let senderKey = content["sender_key"]?.stringValue else { throw .malformed("no sender_key") }
        guard let entry = content["ciphertext"]?[ourCurve25519] else { throw .notForThisDevice }
        guard let type = entry["type"]?.integerValue, let body = entry["body"]?.stringValue,
            let message = try? OlmMessage(type: Int(type), ciphertext: body)
        else { throw .malformed("ciphertext entry needs an integer type and a string body") }
        return (senderKey, message)
    }

    /// Decrypts `message` with one of the existing `sessions` (most recently used first).
    ///
    /// - Returns: nil for a pre-key message that no session matches: it needs a new session
    ///   (``decryptNewSession(_:senderKey:account:)``, which needs the account).
    /// - Throws: `wedgedSession` for a normal message that no session decrypts.
    public static func decryptExisting(
        _ message: OlmMessage, senderKey: String, sender: UserID, sessions: [Session]
    ) throws(DecryptionFailure) -> Decrypted? {
        for session in sessions {
            if message.kind == .preKey && !session.matchesInbound(message, theirIdentityKey: senderKey) { continue }
            guard let plaintext = try? session.decrypt(message) else { continue }
            return Decrypted(plaintext, senderKey: senderKey, session: session, createdSession: false)
        }
        guard message.kind == .preKey else { throw .wedgedSession(sender: sender, senderKey: senderKey) }
        return nil
    }

    /// Creates the inbound session a pre-key message asks for, decrypts with it, and only then spends
    /// the one-time key it used.
    public static func decryptNewSession(_ message: OlmMessage, senderKey: String, account: Account) throws(DecryptionFailure) -> Decrypted {
        do {
            let session = try Session.inbound(account: account, preKeyMessage: message, theirIdentityKey: senderKey)
            let plaintext = try session.decrypt(message)
            // Only now, with the message proven, spend the one-time key (a fallback key stays).
            try account.removeOneTimeKeys(usedBy: session)
            return Decrypted(plaintext, senderKey: senderKey, session: session, createdSession: true)
        } catch {
            // Everything in the block throws libolm's errors only.
            throw .olm(OlmFailureDetail(code: error.code.rawValue, operation: error.operation))
        }
    }

    /// Parses a decrypted plaintext into a payload: a JSON object.
    public static func parse(_ plaintext: [UInt8]) throws(DecryptionFailure) -> JSONValue {
        guard let payload = try? JSONValue.parse(plaintext), payload.objectValue != nil else {
            throw .malformed("decrypted payload is not a JSON object")
        }
        return payload
    }

    /// Checks the payload against the envelope and our device, as the spec requires.
    ///
    /// - Parameters:
    ///   - senderEd25519: The sender device's Ed25519 key from its signed device keys (tracked device list
    ///     or MSC4147 `sender_device_keys`, already verified); the payload's `keys.ed25519` must equal it.
    public static func validate(
        _ payload: JSONValue, sender: UserID, recipient: UserID, recipientEd25519: String, senderEd25519: String?
    ) throws(DecryptionFailure) {
        try validateAddressing(payload, sender: sender, recipient: recipient, recipientEd25519: recipientEd25519)
        guard let senderEd25519 else { throw .unverifiedSender("no known device of \(sender) has this curve25519 key") }
        guard payload["keys"]?["ed25519"]?.stringValue == senderEd25519 else {
            throw .unverifiedSender("keys.ed25519 differs from the device's signed key")
        }
    }

    /// The checks that need no knowledge of the sender's device: who sent it, to whom, and that it
    /// names its sender's Ed25519 key. A payload that fails them is refused at once, never kept waiting.
    public static func validateAddressing(
        _ payload: JSONValue, sender: UserID, recipient: UserID, recipientEd25519: String
    ) throws(DecryptionFailure) {
        guard payload["sender"]?.stringValue == sender.rawValue else { throw .payloadMismatch("sender is not \(sender)") }
        guard payload["recipient"]?.stringValue == recipient.rawValue else { throw .payloadMismatch("recipient is not \(recipient)") }
        guard payload["recipient_keys"]?["ed25519"]?.stringValue == recipientEd25519 else {
            throw .payloadMismatch("recipient_keys.ed25519 is not this device's key")
        }
        guard payload["keys"]?["ed25519"]?.stringValue != nil else { throw .payloadMismatch("no keys.ed25519") }
    }
}

extension OlmDecryption.Decrypted {
    init(_ plaintext: [UInt8], senderKey: String, session: Session, createdSession: Bool) {
        do throws(DecryptionFailure) {
            payload = try OlmDecryption.parse(plaintext)
            payloadFailure = nil
        } catch {
            payload = .null
            payloadFailure = error
        }
        self.senderKey = senderKey
        self.session = session
        self.createdSession = createdSession
    }
}
