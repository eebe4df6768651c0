import MatrixModels
import Olm

/// Decrypts `m.room.encrypted` room events with a known inbound Megolm session.
public enum MegolmDecryption {
    /// A decrypted room event.
    public struct Decrypted: Sendable, Equatable {
        /// The inner event's `type` (e.g. `m.room.message`).
        public var type: String
        /// The inner event's `content`.
        public var content: JSONValue
        public var sessionID: String
        public var messageIndex: UInt32
    }

    /// The fields of `m.megolm.v1.aes-sha2` content needed to find the session.
    public struct Envelope: Sendable, Equatable {
        public var sessionID: String
        public var ciphertext: String
        public var senderKey: String?
        public var deviceID: String?

        public init(content: JSONValue) throws(DecryptionFailure) {
            guard let algorithm = content["algorithm"]?.stringValue else { throw .malformed("no algorithm") }
            guard algorithm == EncryptionAlgorithm.megolm else { throw .unsupportedAlgorithm(algorithm) }
            guard let sessionID = content["session_id"]?.stringValue, let ciphertext = content["ciphertext"]?.stringValue else {
                throw .malformed("m.megolm.v1.aes-sha2 needs session_id and ciphertext")
            }
            // Checked before anything is looked up or stored with it: a session id is an Ed25519 key.
            guard KeyFormat.isSessionID(sessionID) else { throw .malformed("session_id is not a Megolm session id") }
            self.sessionID = sessionID
            self.ciphertext = ciphertext
            // Deprecated fields, still sent by most clients; informational only (kept when well-formed).
            self.senderKey = content["sender_key"]?.stringValue.flatMap { KeyFormat.isKey($0) ? $0 : nil }
            self.deviceID = content["device_id"]?.stringValue
        }
    }

    /// The message index from a Megolm ciphertext's unencrypted header (version byte, then protobuf
    /// field 1 as a varint), without decrypting; nil if the header is not in that shape.
    public static func messageIndex(of ciphertext: String) -> UInt32? {
        InboundGroupSession.messageIndex(of: ciphertext)
    }

    /// Decrypts `envelope` from event `eventID` in `roomID`.
    ///
    /// - Parameters:
    ///   - ledger: Replay protection: the (session, index) → event id seen so far; the new entry
    ///     is recorded on success and must be persisted with the rest of the transaction.
    ///   - predecrypted: libolm's answer for this ciphertext (and its plaintext parsed) when it was
    ///     decrypted ahead, in parallel; every check below still applies to it.
    public static func decrypt(
        _ envelope: Envelope, eventID: EventID, roomID: RoomID, session: InboundGroupSession, ledger: inout ReplayLedger,
        predecrypted: Predecrypted? = nil
    ) throws(DecryptionFailure) -> Decrypted {
        let decrypted: InboundGroupSession.Decrypted
        do {
            if let predecrypted { decrypted = try predecrypted.olm.get() } else { decrypted = try session.decrypt(envelope.ciphertext) }
        } catch where error.code == .unknownMessageIndex {
            throw .unknownMessageIndex(sessionID: envelope.sessionID, firstKnownIndex: session.firstKnownIndex)
        } catch {
            throw .olm(OlmFailureDetail(code: error.code.rawValue, operation: error.operation))
        }
        let parsed = predecrypted.map(\.payload) ?? (try? JSONValue.parse(decrypted.plaintext))
        guard let payload = parsed, let type = payload["type"]?.stringValue else {
            throw .malformed("decrypted Megolm payload is not an event")
        }
        guard let payloadRoom = payload["room_id"]?.stringValue else { throw .malformed("decrypted payload has no room_id") }
        guard payloadRoom == roomID.rawValue else { throw .roomMismatch(expected: roomID.rawValue, found: payloadRoom) }
        try ledger.record(sessionID: envelope.sessionID, messageIndex: decrypted.messageIndex, eventID: eventID.rawValue)
        return Decrypted(type: type, content: payload["content"] ?? .object([:]), sessionID: envelope.sessionID, messageIndex: decrypted.messageIndex)
    }
}

/// Which event used each (Megolm session, message index): a second event with the same pair is a replay.
///
/// The same event decrypted twice (a homeserver retry, a restart) is not a replay.
extension MegolmDecryption {
    /// What the parallel part of decryption found for one ciphertext: libolm's answer and, when it
    /// decrypted, the plaintext parsed as JSON (nil: not JSON) — both pure work done off the actor.
    public struct Predecrypted: Sendable {
        public var olm: Result<InboundGroupSession.Decrypted, OlmError>
        public var payload: JSONValue?

        /// Decrypts `ciphertext` with `session` and parses what comes out.
        init(session: InboundGroupSession, ciphertext: String) {
            do {
                let decrypted = try session.decrypt(ciphertext)
                olm = .success(decrypted)
                payload = try? JSONValue.parse(decrypted.plaintext)
            } catch {
                olm = .failure(error)
            }
        }
    }
}

public struct ReplayLedger: Sendable, Equatable {
    public struct Key: Hashable, Sendable {
        public var sessionID: String
        public var messageIndex: UInt32

        public init(sessionID: String, messageIndex: UInt32) {
            self.sessionID = sessionID
            self.messageIndex = messageIndex
        }
    }

    public private(set) var entries: [Key: String] = [:]
    /// Entries added since the ledger was loaded: what to persist.
    public private(set) var added: [Key: String] = [:]

    public init(entries: [Key: String] = [:]) {
        self.entries = entries
    }

    /// Adds entries read from the store (not to be written again).
    mutating func merge(stored: [Key: String]) {
        entries.merge(stored) { current, _ in current }
    }

    mutating func record(sessionID: String, messageIndex: UInt32, eventID: String) throws(DecryptionFailure) {
        let key = Key(sessionID: sessionID, messageIndex: messageIndex)
        if let first = entries[key] {
            guard first == eventID else { throw .replay(sessionID: sessionID, messageIndex: messageIndex, firstEventID: first) }
            return
        }
        entries[key] = eventID
        added[key] = eventID
    }
}
