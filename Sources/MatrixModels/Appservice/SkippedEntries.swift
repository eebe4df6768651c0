/// Entries of a transaction that were left out, counted by why.
///
/// The homeserver retries a refused transaction forever, and its retry no longer carries the to-device
/// messages, device-list changes or key counts of the first attempt. So a bad entry must cost only itself:
/// it is left out and counted here, and operators see the counts in logs and metrics instead of a
/// stalled bridge.
public struct SkippedEntries: Sendable, Equatable {
    /// Why an entry was left out. Raw values are stable snake_case, usable as metric labels.
    public enum Reason: String, Sendable, Hashable, CaseIterable, Comparable {
        /// Not JSON on its own: a syntax error inside it, a number out of range (`1e400`), an empty element.
        case unparseable
        /// Nested deeper than ``JSONValue/maximumDepth``.
        case tooDeep = "too_deep"
        /// Invalid UTF-8, or a lone surrogate escape (`"\udc00"`), in a string or key.
        case invalidUTF8 = "invalid_utf8"
        /// An object inside it names a key twice, or a per-user or per-device map repeats a user or device.
        case duplicateKey = "duplicate_key"
        /// A room or ephemeral event, to-device message, or per-user map that is not a JSON object.
        case notAnObject = "not_an_object"
        /// A to-device message without a string `type`.
        case badToDeviceType = "bad_to_device_type"
        /// A to-device message whose `sender` is missing or not a user id.
        case badToDeviceSender = "bad_to_device_sender"
        /// A to-device message whose `to_user_id` or `to_device_id` is missing or invalid: it cannot be routed.
        case badToDeviceRecipient = "bad_to_device_recipient"
        /// A device-list entry, or a key of a per-user map, that is not a user id.
        case badUserID = "bad_user_id"
        /// A key of a per-device map that is not a device id.
        case badDeviceID = "bad_device_id"
        /// A device's one-time key counts that are not an object of integers in 0...Int32.max.
        case badKeyCount = "bad_key_count"
        /// A device's unused fallback key types that are not an array of strings.
        case badFallbackTypes = "bad_fallback_types"
        /// A section (`events`, `device_lists`, `changed`, …) that is present but not an array or object as it should be.
        case wrongSectionType = "wrong_section_type"
        /// A section named twice in the same object; the first one is read.
        case duplicateSection = "duplicate_section"

        public static func < (lhs: Reason, rhs: Reason) -> Bool { lhs.rawValue < rhs.rawValue }

        /// The reason for an entry that failed to parse.
        init(_ error: JSONError) {
            switch error.code {
            case .depthExceeded: self = .tooDeep
            case .invalidUTF8: self = .invalidUTF8
            case .duplicateKey: self = .duplicateKey
            default: self = .unparseable
            }
        }
    }

    /// How many entries were left out for each reason; reasons that did not occur are absent.
    public private(set) var byReason: [Reason: Int]

    public init(_ byReason: [Reason: Int] = [:]) {
        self.byReason = byReason.filter { $0.value != 0 }
    }

    /// All entries left out.
    public var total: Int { byReason.values.reduce(0, +) }

    public var isEmpty: Bool { byReason.isEmpty }

    public subscript(reason: Reason) -> Int { byReason[reason, default: 0] }

    /// Counts one more entry left out for `reason`.
    public mutating func record(_ reason: Reason) {
        byReason[reason, default: 0] += 1
    }
}

extension SkippedEntries: CustomStringConvertible {
    /// `reason=count` pairs, sorted: fit for a log line.
    public var description: String {
        byReason.sorted { $0.key < $1.key }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ")
    }
}
