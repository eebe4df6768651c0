import Logging
import MatrixCrypto
import MatrixModels
import Metrics

extension CryptoEngine {
    /// Answers an `m.room_key_request` for a local device's own session (``CryptoMachine/answer(_:)``):
    /// the advanced Olm session commits under the lock, then the forwarded key is sent, as the asked
    /// device, outside it. Refusals are counted by reason and get no answer.
    ///
    /// - Returns: Why nothing was sent, or nil when the key was.
    @discardableResult
    public func answer(_ request: RoomKeyRequest) async throws -> KeyRequestRefusal? {
        let answer = try await step { () -> (CryptoChanges, KeyRequestAnswer) in
            let answer = try await machine.answer(request)
            if case .forward(let changes, _) = answer { return (changes, answer) }
            return (CryptoChanges(), answer)
        }
        switch answer {
        case .refused(let reason):
            Counter(label: "sealbridge_key_requests_received_total", dimensions: [("outcome", reason.rawValue)]).increment()
            logger.info("key request not answered", metadata: [
                "requester": "\(request.requester)", "recipient": "\(request.recipient.userID)", "reason": "\(reason.rawValue)",
                "session_id": "\(request.session?.sessionID ?? "")",
            ])
            return reason
        case .forward(_, let toDevice):
            try await transport.sendToDevice(toDevice, as: request.recipient.userID, device: request.recipient.deviceID)
            Counter(label: "sealbridge_key_requests_received_total", dimensions: [("outcome", "answered")]).increment()
            logger.notice("answered a key request with the room key", metadata: [
                "requester": "\(request.requester)", "recipient": "\(request.recipient.userID)", "session_id": "\(request.session?.sessionID ?? "")",
            ])
            return nil
        }
    }
}
