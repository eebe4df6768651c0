/// An error from the crypto engine, with the context needed to act on it.
public struct CryptoError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The configured store secret is unusable.
        public static let invalidSecret = Code(rawValue: "invalid_secret")
        /// Stored crypto data does not decrypt or parse: wrong secret or tampering.
        public static let storeCorrupted = Code(rawValue: "store_corrupted")
        /// A stored record names a store key id that no configured pickle key has (see ``StoreCipher``).
        public static let unknownStoreKey = Code(rawValue: "unknown_store_key")
        /// libolm refused an operation; the message names it.
        public static let olm = Code(rawValue: "olm")
        /// The local user (bot or puppet) has no device yet.
        public static let noLocalDevice = Code(rawValue: "no_local_device")
        /// The room is not known to be encrypted (no `m.room.encryption` seen), or uses another algorithm.
        public static let roomNotEncrypted = Code(rawValue: "room_not_encrypted")
        /// The remote device to reach is not in the tracked device lists.
        public static let unknownDevice = Code(rawValue: "unknown_device")
        /// Cross-signing seeds or keys that do not belong together (wrong size, or another identity's).
        public static let invalidCrossSigning = Code(rawValue: "invalid_cross_signing")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
