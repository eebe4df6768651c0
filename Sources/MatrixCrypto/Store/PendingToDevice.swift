import Foundation
import MatrixModels

/// A decrypted Olm to-device payload whose sender's device is not known yet.
///
/// The Olm message itself cannot be decrypted twice (its ratchet step is spent and committed), so
/// what waits is the plaintext payload, sealed at rest: it may carry a room key. Once the sender's
/// device list has been fetched (after the commit, never inside it), the payload is checked against
/// it and acted on, or refused for good.
public struct PendingToDevice: Sendable, Hashable {
    /// Random, assigned when it is parked.
    public var id: String
    /// The local device the message was for.
    public var recipient: DeviceRef
    public var sender: UserID
    /// The curve25519 key the Olm message came from (authenticated by Olm).
    public var senderKey: String
    /// The decrypted payload: `type`, `content`, `sender`, `recipient`, `keys`, …
    public var payload: JSONValue
    public var receivedAt: Date

    public init(id: String, recipient: DeviceRef, sender: UserID, senderKey: String, payload: JSONValue, receivedAt: Date) {
        self.id = id
        self.recipient = recipient
        self.sender = sender
        self.senderKey = senderKey
        self.payload = payload
        self.receivedAt = receivedAt
    }
}
