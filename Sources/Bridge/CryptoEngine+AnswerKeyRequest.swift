import Logging
import MatrixCrypto
import MatrixModels
import Metrics

extension CryptoEngine {
    /// Answers an `m.room_key_request` for a local device's own session (``CryptoMachine/answer(_:)``):
    /// the advanced Olm session commits under the lock, then the forwarded key is sent, as the asked
    /// device, outside it. Refusals are counted by reason; a device not allowed the key is told so
    /// (`m.room_key.withheld`, sent outside the lock; a failure to tell it is logged, not thrown).
    ///
    /// - Returns: Why the key was not sent, or nil when it was.
    @discardableResult
    public func answer(_ request: RoomKeyRequest) async throws -> KeyRequestRefusal? {
        let answer = try await step { () -> (CryptoChanges, KeyRequestAnswer) in
            let answer = try await machine.answer(request)
            if case .forward(let changes, _) = answer { return (changes, answer) }
            return (CryptoChanges(), answer)
        }
        switch answer {
        case .withhold(let reason, let notice):
            Counter(label: "sealbridge_key_requests_received_total", dimensions: [("outcome", reason.rawValue)]).increment()
            do {
                try await transport.sendToDevice(notice, as: request.recipient.userID, device: request.recipient.deviceID)
                logger.info("key request refused; the requester was told (m.room_key.withheld)", metadata: [
                    "requester": "\(request.requester)", "recipient": "\(request.recipient.userID)", "reason": "\(reason.rawValue)",
                    "session_id": "\(request.session?.sessionID ?? "")",
                ])
            } catch {
                logger.warning("key request refused; telling the requester failed", metadata: [
                    "requester": "\(request.requester)", "recipient": "\(request.recipient.userID)", "reason": "\(reason.rawValue)",
                    "error": "\(error)",
                ])
            }
            return reason
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
