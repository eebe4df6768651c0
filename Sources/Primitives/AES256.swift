internal import COpenSSL

/// Runs one EVP cipher operation over a whole buffer; shared by CTR and GCM.
enum Cipher {
    /// - Parameter configure: Extra setup after the key and IV are set (GCM: AAD, tag).
    /// - Parameter finish: Runs after the final call succeeded (GCM encryption: read the tag).
    static func run(
        _ cipher: OpaquePointer?, encrypt: Bool, key: [UInt8], iv: [UInt8], input: [UInt8], operation: String,
        configure: (OpaquePointer) -> Bool = { _ in true },
        finish: (OpaquePointer) -> Bool = { _ in true },
        finalFailure: PrimitivesError? = nil
    ) throws(PrimitivesError) -> [UInt8] {
        guard let context = EVP_CIPHER_CTX_new() else { throw .libcrypto("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        let initOK = key.withUnsafeBytes { keyBuffer in
            iv.withUnsafeBytes { ivBuffer in
                EVP_CipherInit_ex2(
                    context, cipher, keyBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    ivBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), encrypt ? 1 : 0, nil) == 1
            }
        }
        guard initOK, configure(context) else { throw .libcrypto(operation) }
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var written: Int32 = 0, finalWritten: Int32 = 0
        let updateOK = input.withUnsafeBytes { inputBuffer in
            output.withUnsafeMutableBytes { out in
                input.isEmpty
                    || EVP_CipherUpdate(
                        context, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &written,
                        inputBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1
            }
        }
        guard updateOK else { throw .libcrypto(operation) }
        let finalOK = output.withUnsafeMutableBytes { out in
            EVP_CipherFinal_ex(context, out.baseAddress!.assumingMemoryBound(to: UInt8.self) + Int(written), &finalWritten) == 1
        }
        guard finalOK else {
            if let finalFailure {
                ERR_clear_error()
                throw finalFailure
            }
            throw .libcrypto(operation)
        }
        guard finish(context) else { throw .libcrypto(operation) }
        output.removeSubrange(Int(written + finalWritten)...)
        return output
    }
}

/// AES-256 in counter mode: encrypted attachments, SSSS (`m.secret_storage.v1.aes-hmac-sha2`).
public enum AES256CTR {
    /// Encrypts or decrypts (the same operation) `data` with a 32-byte key and 16-byte initial counter.
    public static func transform(_ data: [UInt8], key: [UInt8], iv: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        guard key.count == 32 else { throw PrimitivesError(code: .invalidKeyLength, message: "AES-256 needs a 32-byte key, got \(key.count)") }
        guard iv.count == 16 else { throw PrimitivesError(code: .invalidNonceLength, message: "AES-CTR needs a 16-byte IV, got \(iv.count)") }
        return try Cipher.run(EVP_aes_256_ctr(), encrypt: true, key: key, iv: iv, input: data, operation: "AES-256-CTR")
    }
}

/// AES-256-GCM: authenticated encryption for pickles and secrets at rest.
public enum AES256GCM {
    public static let nonceByteCount = 12
    public static let tagByteCount = 16

    /// A GCM result: nonce, ciphertext and tag; `combined` is what gets stored.
    public struct SealedBox: Sendable, Hashable {
        public var nonce: [UInt8]
        public var ciphertext: [UInt8]
        public var tag: [UInt8]

        public init(nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
            self.nonce = nonce
            self.ciphertext = ciphertext
            self.tag = tag
        }

        /// `nonce ‖ ciphertext ‖ tag`.
        public var combined: [UInt8] { nonce + ciphertext + tag }

        /// Splits `nonce ‖ ciphertext ‖ tag`.
        public init(combined: [UInt8]) throws(PrimitivesError) {
            guard combined.count >= AES256GCM.nonceByteCount + AES256GCM.tagByteCount else {
                throw PrimitivesError(code: .invalidInput, message: "sealed box is shorter than nonce and tag")
            }
            nonce = Array(combined.prefix(AES256GCM.nonceByteCount))
            ciphertext = Array(combined.dropFirst(AES256GCM.nonceByteCount).dropLast(AES256GCM.tagByteCount))
            tag = Array(combined.suffix(AES256GCM.tagByteCount))
        }
    }

    /// Encrypts with a fresh random nonce.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], authenticating aad: [UInt8] = []) throws(PrimitivesError) -> SealedBox {
        try seal(plaintext, key: key, nonce: SecureRandom.bytes(count: nonceByteCount), authenticating: aad)
    }

    /// Encrypts with the given nonce; a nonce must never repeat under one key.
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws(PrimitivesError) -> SealedBox {
        try checkSizes(key: key, nonce: nonce)
        var tag = [UInt8](repeating: 0, count: tagByteCount)
        let ciphertext = try Cipher.run(
            EVP_aes_256_gcm(), encrypt: true, key: key, iv: nonce, input: plaintext, operation: "AES-256-GCM seal",
            configure: { addAAD($0, aad) },
            finish: { context in
                tag.withUnsafeMutableBytes { EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagByteCount), $0.baseAddress) == 1 }
            })
        return SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
    }

    /// Decrypts and authenticates `box`.
    ///
    /// - Throws: `authenticationFailed` for a wrong key, tampered ciphertext or tag, or different AAD.
    public static func open(_ box: SealedBox, key: [UInt8], authenticating aad: [UInt8] = []) throws(PrimitivesError) -> [UInt8] {
        try checkSizes(key: key, nonce: box.nonce)
        guard box.tag.count == tagByteCount else {
            throw PrimitivesError(code: .authenticationFailed, message: "GCM tag must be \(tagByteCount) bytes")
        }
        var tag = box.tag
        return try Cipher.run(
            EVP_aes_256_gcm(), encrypt: false, key: key, iv: box.nonce, input: box.ciphertext, operation: "AES-256-GCM open",
            configure: { context in
                addAAD(context, aad)
                    && tag.withUnsafeMutableBytes { EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagByteCount), $0.baseAddress) == 1 }
            },
            finalFailure: PrimitivesError(code: .authenticationFailed, message: "AES-256-GCM authentication failed"))
    }

    static func checkSizes(key: [UInt8], nonce: [UInt8]) throws(PrimitivesError) {
        guard key.count == 32 else { throw PrimitivesError(code: .invalidKeyLength, message: "AES-256 needs a 32-byte key, got \(key.count)") }
        guard nonce.count == nonceByteCount else {
            throw PrimitivesError(code: .invalidNonceLength, message: "AES-GCM needs a 12-byte nonce, got \(nonce.count)")
        }
    }

    static func addAAD(_ context: OpaquePointer, _ aad: [UInt8]) -> Bool {
        guard !aad.isEmpty else { return true }
        var ignored: Int32 = 0
        return aad.withUnsafeBytes {
            EVP_CipherUpdate(context, nil, &ignored, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) == 1
        }
    }
}
