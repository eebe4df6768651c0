/// Decides how many one-time keys a device should generate and when its fallback key must rotate,
/// from what the homeserver reports (MSC3202 counts and unused fallback key types).
///
/// Pure arithmetic, so the rules are tested on their own; the machine applies the decisions.
public struct OneTimeKeyPolicy: Sendable, Equatable {
    /// How many signed curve25519 keys a device keeps on the server. libolm holds at most 100, and
    /// keeps some headroom for keys generated but not yet confirmed.
    public var target: Int

    public init(target: Int = 50) {
        self.target = max(0, min(target, 50))
    }

    /// The keys to generate given the server's count for this device.
    ///
    /// An absent algorithm or an empty count map means zero (Synapse sends `{}` once the last key is
    /// claimed). Keys generated earlier but still unpublished count as already on their way.
    public func keysToGenerate(serverCount: [String: Int], unpublished: Int) -> Int {
        let onServer = serverCount[EncryptionAlgorithm.signedCurve25519] ?? 0
        return max(0, target - onServer - unpublished)
    }

    /// Whether a device's account must be opened for what the homeserver reported about it: keys to
    /// top up, a used fallback key, an old fallback key past its grace period, or device keys not yet
    /// accepted. Keys generated but still unpublished live in the pickle; they only change the answer
    /// when the count is under target, and then the account is opened anyway.
    ///
    /// - Parameters:
    ///   - serverCount: The device's count in the transaction; nil: none reported for it.
    ///   - unusedFallbackTypes: The device's unused fallback key types; nil: none reported for it.
    public func needsAccount(
        serverCount: [String: Int]?, unusedFallbackTypes: [String]?, deviceKeysUploaded: Bool, oldFallbackKeyDue: Bool
    ) -> Bool {
        if !deviceKeysUploaded || oldFallbackKeyDue { return true }
        if let serverCount, keysToGenerate(serverCount: serverCount, unpublished: 0) > 0 { return true }
        if let unusedFallbackTypes, fallbackKeyUsed(unusedTypes: unusedFallbackTypes) { return true }
        return false
    }

    /// Whether the fallback key must be replaced: the server lists the algorithms whose fallback key is
    /// still unused, so a list without `signed_curve25519` means a peer used it.
    public func fallbackKeyUsed(unusedTypes: [String]) -> Bool {
        !unusedTypes.contains(EncryptionAlgorithm.signedCurve25519)
    }
}
