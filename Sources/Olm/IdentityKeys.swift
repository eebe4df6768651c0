/// An Olm account's long-term public keys, as published in `device_keys.keys`.
public struct IdentityKeys: Sendable, Hashable, Codable {
    /// The Curve25519 key that Olm sessions are established to (`curve25519:DEVICE`).
    public var curve25519: String
    /// The Ed25519 key that signs the device's keys and Megolm sessions (`ed25519:DEVICE`).
    public var ed25519: String

    public init(curve25519: String, ed25519: String) {
        self.curve25519 = curve25519
        self.ed25519 = ed25519
    }
}

/// A one-time or fallback Curve25519 key with the id libolm gave it (`signed_curve25519:ID`).
public struct OneTimeKey: Sendable, Hashable {
    public var keyID: String
    public var publicKey: String

    public init(keyID: String, publicKey: String) {
        self.keyID = keyID
        self.publicKey = publicKey
    }
}
