/// A `m.megolm_backup.v1.curve25519-aes-sha2` ciphertext: the three base64 fields of `session_data`.
public struct PkMessage: Sendable, Hashable, Codable {
    public var ciphertext: String
    public var mac: String
    public var ephemeral: String

    public init(ciphertext: String, mac: String, ephemeral: String) {
        self.ciphertext = ciphertext
        self.mac = mac
        self.ephemeral = ephemeral
    }
}
