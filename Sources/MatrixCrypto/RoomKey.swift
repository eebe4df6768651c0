import MatrixModels
import Olm

/// An `m.room_key` to-device payload: a Megolm session a sender shares with us.
public struct RoomKey: Sendable, Hashable {
    public var roomID: RoomID
    public var sessionID: String
    public var sessionKey: String

    /// Reads the `content` of a decrypted `m.room_key`.
    public init(content: JSONValue) throws(DecryptionFailure) {
        guard let algorithm = content["algorithm"]?.stringValue else { throw .malformed("m.room_key without algorithm") }
        guard algorithm == EncryptionAlgorithm.megolm else { throw .unsupportedAlgorithm(algorithm) }
        guard let room = content["room_id"]?.stringValue, let roomID = try? RoomID(room),
            let sessionID = content["session_id"]?.stringValue, let sessionKey = content["session_key"]?.stringValue
        else { throw .malformed("m.room_key needs room_id, session_id and session_key") }
        self.roomID = roomID
        self.sessionID = sessionID
        self.sessionKey = sessionKey
    }

    /// The inbound session the key creates.
    ///
    /// - Throws: `malformed` if the key is not a valid session key or its session id differs from the
    ///   one claimed (a sender must not be able to plant a key under another session's id).
    public func inboundSession() throws(DecryptionFailure) -> InboundGroupSession {
        let session: InboundGroupSession
        do {
            session = try InboundGroupSession(sessionKey: sessionKey)
        } catch {
            throw .olm(OlmFailureDetail(code: error.code.rawValue, operation: error.operation))
        }
        guard session.sessionID == sessionID else { throw .malformed("session_key does not belong to session_id \(sessionID)") }
        return session
    }

    /// The inbound session an `m.forwarded_room_key` carries (`session_key` in the export format,
    /// known from the index it was exported at). Same checks as ``inboundSession()``.
    public func importedSession() throws(DecryptionFailure) -> InboundGroupSession {
        let session: InboundGroupSession
        do {
            session = try InboundGroupSession(importing: sessionKey)
        } catch {
            throw .olm(OlmFailureDetail(code: error.code.rawValue, operation: error.operation))
        }
        guard session.sessionID == sessionID else { throw .malformed("session_key does not belong to session_id \(sessionID)") }
        return session
    }
}
