internal import COlm

/// Decrypts what ``PkEncryption`` produced, holding the Curve25519 private key (key backup recovery).
public final class PkDecryption {
    let memory: OlmMemory
    var pointer: OpaquePointer
    /// The public key to publish (the backup's `auth_data.public_key`), unpadded base64.
    public private(set) var publicKey: String = ""

    private init() {
        memory = OlmMemory(size: olm_pk_decryption_size())
        pointer = olm_pk_decryption(memory.raw)
    }

    deinit {
        memory.release { _ = olm_clear_pk_decryption(pointer) }
    }

    var lastError: OlmErrorCode { olm_pk_decryption_last_error_code(pointer) }

    /// The private key length in bytes.
    public static var privateKeyByteCount: Int { olm_pk_private_key_length() }

    /// Creates a key pair from a random private key.
    public static func create() throws(OlmError) -> PkDecryption {
        let privateKey = OlmRandom.withBytes(olm_pk_private_key_length()) {
            Array(UnsafeRawBufferPointer(start: $0, count: $1))
        }
        var copy = privateKey
        defer { OlmBytes.wipe(&copy) }
        return try PkDecryption(privateKey: copy)
    }

    /// Recreates the key pair from a 32-byte private key (e.g. one recovered from secret storage).
    public convenience init(privateKey: [UInt8]) throws(OlmError) {
        guard privateKey.count == olm_pk_private_key_length() else {
            throw OlmError(code: .invalidArgument, operation: "PkDecryption(private key of \(privateKey.count) bytes)")
        }
        self.init()
        let pointer = self.pointer
        let (bytes, result) = privateKey.withUnsafeBytes { key in
            OlmBytes.output(capacity: olm_pk_key_length()) {
                // Returns 0 on success rather than a length.
                let r = olm_pk_key_from_private(pointer, $0, $1, key.baseAddress, key.count)
                return r == olm_error() ? r : $1
            }
        }
        try OlmError.check(result, lastError, "olm_pk_key_from_private")
        publicKey = OlmBytes.string(bytes)
    }

    /// The private key, for storing in secret storage. Wipe it when done.
    public func privateKey() throws(OlmError) -> [UInt8] {
        let (bytes, result) = OlmBytes.output(capacity: olm_pk_private_key_length()) {
            olm_pk_get_private_key(pointer, $0, $1)
        }
        try OlmError.check(result, lastError, "olm_pk_get_private_key")
        return bytes
    }

    /// Restores from ``pickle(key:)`` output.
    public static func unpickle(_ pickle: String, key: PickleKey) throws(OlmError) -> PkDecryption {
        let decryption = PkDecryption()
        var publicKey = [UInt8]()
        try Pickling.unpickle(pickle, key: key, operation: "olm_unpickle_pk_decryption", lastError: { decryption.lastError }) {
            keyPointer, keyCount, pickled, pickledCount in
            var r = 0
            publicKey = OlmBytes.output(capacity: olm_pk_key_length()) {
                r = olm_unpickle_pk_decryption(decryption.pointer, keyPointer, keyCount, pickled, pickledCount, $0, $1)
                return r == olm_error() ? r : $1
            }.bytes
            return r
        }
        decryption.publicKey = OlmBytes.string(publicKey)
        return decryption
    }

    /// The key pair, encrypted with `key`, as base64.
    public func pickle(key: PickleKey) throws(OlmError) -> String {
        try Pickling.pickle(
            key: key, length: olm_pickle_pk_decryption_length(pointer), operation: "olm_pickle_pk_decryption",
            lastError: { lastError }
        ) { olm_pickle_pk_decryption(pointer, $0, $1, $2, $3) }
    }

    /// Decrypts and authenticates `message`.
    ///
    /// - Throws: `badMessageMAC` for a wrong key or tampered message, `invalidBase64`.
    public func decrypt(_ message: PkMessage) throws(OlmError) -> [UInt8] {
        let ephemeral = Array(message.ephemeral.utf8), mac = Array(message.mac.utf8)
        let ciphertextLength = message.ciphertext.utf8.count
        let maxLength = olm_pk_max_plaintext_length(pointer, ciphertextLength)
        try OlmError.check(maxLength, lastError, "olm_pk_max_plaintext_length")
        let (bytes, result) = ephemeral.withUnsafeBytes { eph in
            mac.withUnsafeBytes { macBuffer in
                OlmBytes.withMutableCopy(of: message.ciphertext.utf8) { input, count in
                    OlmBytes.output(capacity: maxLength) {
                        olm_pk_decrypt(
                            pointer, eph.baseAddress, eph.count, macBuffer.baseAddress, macBuffer.count,
                            input, count, $0, $1)
                    }
                }
            }
        }
        try OlmError.check(result, lastError, "olm_pk_decrypt")
        return bytes
    }
}
