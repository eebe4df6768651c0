import Foundation
import MatrixModels

/// The operator's choices that shape how the machine shares keys.
public struct CryptoSettings: Sendable, Equatable {
    /// Rotation when a room's `m.room.encryption` does not say: one week.
    public var defaultRotationPeriod: TimeInterval
    /// Rotation when a room's `m.room.encryption` does not say: 100 messages.
    public var defaultRotationMessages: Int64
    /// How many inbound Megolm sessions stay unpickled between transactions.
    public var inboundSessionCacheSize: Int
    /// Shortest time between two wedged-session recoveries with one remote device.
    public var wedgedRecoveryInterval: TimeInterval
    /// Devices of a batch `/sendToDevice`, per request.
    public var toDeviceBatchSize: Int
    /// How long a replaced fallback key still decrypts pre-key messages.
    public var fallbackKeyGracePeriod: TimeInterval = 3600
    /// Decrypt a transaction's Megolm events on every core (see ``CryptoMachine/decryptInParallel``);
    /// false keeps decryption on the machine's actor alone.
    public var parallelDecryption = true
    /// Which devices get room keys (`encryption.sharing_policy`); the others get
    /// `m.room_key.withheld` `m.unverified`. Dehydrated devices never get keys.
    public var sharingPolicy = TrustPolicy.all
    /// Which senders' events reach the bridge logic decrypted (`encryption.accept_from`); events of
    /// weaker devices are delivered as refused (``DecryptionFailure/untrustedDevice(_:)``).
    public var acceptFrom = TrustPolicy.all
    /// Shortest time between two answers to one device's key requests for one session.
    public var keyRequestAnswerInterval: TimeInterval = 60
    /// Most sessions one remote device is asked for (`m.room_key_request`) per minute.
    public var keyRequestsPerDevicePerMinute = 10
    /// Most key requests of one remote user looked at per minute; the rest are refused unread.
    public var keyRequestsPerUserPerMinute = 60
    /// The local user whose user-signing key vouches for other users (the bot): `trust @user` makes
    /// it sign their master key, and its signature on a master key makes that user `verified`.
    public var trustAnchor: UserID?

    public init(
        defaultRotationPeriod: TimeInterval = 7 * 86_400, defaultRotationMessages: Int64 = 100, inboundSessionCacheSize: Int = 1024,
        wedgedRecoveryInterval: TimeInterval = 3600, toDeviceBatchSize: Int = 250
    ) {
        self.defaultRotationPeriod = defaultRotationPeriod
        self.defaultRotationMessages = defaultRotationMessages
        self.inboundSessionCacheSize = inboundSessionCacheSize
        self.wedgedRecoveryInterval = wedgedRecoveryInterval
        self.toDeviceBatchSize = toDeviceBatchSize
    }
}
