/// Why a history bundle (MSC4268) was not imported: each one a bounded metric label
/// (`sealbridge_history_bundles_total{outcome}`).
public enum HistoryBundleFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The sender is not who invited the local user into the room.
    case notInviter
    /// No invite from anyone was seen within a day of the bundle.
    case expired
    /// The media repository did not serve the file (404, refused, unreachable after retries).
    case downloadFailed(String)
    /// The file is larger than ``HistoryBundle/maxBytes``.
    case tooLarge
    /// The downloaded bytes do not hash to `hashes.sha256`.
    case hashMismatch
    /// The plaintext is not a bundle (not JSON, no `room_keys` array, …).
    case malformed(String)

    /// The metric label.
    public var label: String {
        switch self {
        case .notInviter: "not_inviter"
        case .expired: "expired"
        case .downloadFailed: "download_failed"
        case .tooLarge: "too_large"
        case .hashMismatch: "hash_mismatch"
        case .malformed: "malformed"
        }
    }

    public var description: String {
        switch self {
        case .notInviter: "the bundle's sender did not invite the recipient"
        case .expired: "no invite from the bundle's sender within a day"
        case .downloadFailed(let detail): "download failed: \(detail)"
        case .tooLarge: "the bundle is larger than \(HistoryBundle.maxBytes) bytes"
        case .hashMismatch: "the downloaded bytes do not match hashes.sha256"
        case .malformed(let detail): "malformed bundle: \(detail)"
        }
    }
}
