internal import COlm

/// An error reported by libolm, mapped once from its error codes.
///
/// libolm reports failure by returning `olm_error()` and leaving a code on the object; every wrapper
/// turns that into this value through ``OlmError/check(_:_:_:)`` so callers see one Swift type with a
/// stable ``Code`` and never a C enum.
public struct OlmError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, stable across libolm versions and extensible by this module.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let notEnoughRandom = Code(rawValue: "not_enough_random")
        public static let outputBufferTooSmall = Code(rawValue: "output_buffer_too_small")
        public static let badMessageVersion = Code(rawValue: "bad_message_version")
        public static let badMessageFormat = Code(rawValue: "bad_message_format")
        public static let badMessageMAC = Code(rawValue: "bad_message_mac")
        public static let badMessageKeyID = Code(rawValue: "bad_message_key_id")
        public static let invalidBase64 = Code(rawValue: "invalid_base64")
        public static let badAccountKey = Code(rawValue: "bad_account_key")
        public static let unknownPickleVersion = Code(rawValue: "unknown_pickle_version")
        public static let corruptedPickle = Code(rawValue: "corrupted_pickle")
        public static let badSessionKey = Code(rawValue: "bad_session_key")
        public static let unknownMessageIndex = Code(rawValue: "unknown_message_index")
        public static let badLegacyAccountPickle = Code(rawValue: "bad_legacy_account_pickle")
        public static let badSignature = Code(rawValue: "bad_signature")
        public static let inputBufferTooSmall = Code(rawValue: "input_buffer_too_small")
        public static let pickleExtraData = Code(rawValue: "pickle_extra_data")
        /// The caller passed something this wrapper refuses before libolm sees it (a wrong-length key).
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        /// libolm returned a code this wrapper does not know.
        public static let unknown = Code(rawValue: "unknown")
    }

    /// What went wrong.
    public var code: Code
    /// The operation that failed, e.g. `"olm_decrypt"`; never contains key material or plaintext.
    public var operation: String

    public init(code: Code, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String { "\(operation) failed: \(code)" }
}

extension OlmError {
    /// Maps a libolm error code to ``Code``.
    static func code(for raw: OlmErrorCode) -> Code {
        switch raw.rawValue {
        case OLM_NOT_ENOUGH_RANDOM.rawValue: .notEnoughRandom
        case OLM_OUTPUT_BUFFER_TOO_SMALL.rawValue: .outputBufferTooSmall
        case OLM_BAD_MESSAGE_VERSION.rawValue: .badMessageVersion
        case OLM_BAD_MESSAGE_FORMAT.rawValue: .badMessageFormat
        case OLM_BAD_MESSAGE_MAC.rawValue: .badMessageMAC
        case OLM_BAD_MESSAGE_KEY_ID.rawValue: .badMessageKeyID
        case OLM_INVALID_BASE64.rawValue: .invalidBase64
        case OLM_BAD_ACCOUNT_KEY.rawValue: .badAccountKey
        case OLM_UNKNOWN_PICKLE_VERSION.rawValue: .unknownPickleVersion
        case OLM_CORRUPTED_PICKLE.rawValue: .corruptedPickle
        case OLM_BAD_SESSION_KEY.rawValue: .badSessionKey
        case OLM_UNKNOWN_MESSAGE_INDEX.rawValue: .unknownMessageIndex
        case OLM_BAD_LEGACY_ACCOUNT_PICKLE.rawValue: .badLegacyAccountPickle
        case OLM_BAD_SIGNATURE.rawValue: .badSignature
        case OLM_INPUT_BUFFER_TOO_SMALL.rawValue: .inputBufferTooSmall
        case OLM_PICKLE_EXTRA_DATA.rawValue: .pickleExtraData
        default: .unknown
        }
    }

    /// Returns `result` unless it is libolm's error value, in which case throws the object's last error.
    ///
    /// - Parameters:
    ///   - result: What the libolm call returned.
    ///   - lastError: Reads the failing object's last error code (only evaluated on failure).
    ///   - operation: The libolm function name, for the error message.
    @discardableResult
    static func check(
        _ result: Int, _ lastError: @autoclosure () -> OlmErrorCode, _ operation: String
    ) throws(OlmError) -> Int {
        if result == olm_error() {
            throw OlmError(code: code(for: lastError()), operation: operation)
        }
        return result
    }
}
