import MatrixCrypto
import MatrixModels

/// The last one-time key count the homeserver reported for each local device (MSC3202), for the
/// `status` command: how many devices are running low. Counts ride on some transactions only, and
/// a top-up follows every low count, so this is a recent picture, kept in memory.
public actor OneTimeKeyGauge {
    private var counts: [DeviceRef: Int] = [:]

    public init() {}

    /// Records the counts of a committed transaction; an empty map means zero keys.
    ///
    /// Synapse keeps a user's cross-signing keys as hidden devices whose id is the public key, and
    /// reports them in MSC3202 counts too, with no one-time keys: they are not devices and are skipped.
    public func record(_ reported: [UserID: [DeviceID: [String: Int]]]) {
        for (user, devices) in reported {
            for (device, byAlgorithm) in devices where !KeyFormat.isKey(device.rawValue) {
                counts[DeviceRef(userID: user, deviceID: device)] = byAlgorithm[EncryptionAlgorithm.signedCurve25519] ?? 0
            }
        }
    }

    /// Devices whose last reported count is below `threshold`.
    public func low(below threshold: Int) -> Int {
        counts.values.filter { $0 < threshold }.count
    }
}
