internal import COpenSSL

/// One use of an `EVP_CIPHER_CTX`: initialised with a key and IV, fed data, finished, freed.
///
/// A class so that `deinit` frees the context on every path, including thrown errors;
/// `EVP_CIPHER_CTX_free` also cleanses the expanded key schedule. Not Sendable and never stored:
/// each operation makes its own.
final class CipherContext {
    /// libcrypto lengths are `int`; larger inputs are fed in chunks of this size.
    private static let maximumChunk = 1 << 30

    private let context: OpaquePointer

    /// Creates a context ready to encrypt or decrypt.
    ///
    /// - Parameters:
    ///   - cipher: The `EVP_CIPHER` (for example `EVP_aes_256_gcm()`), whose default IV length must
    ///     match `iv`.
    ///   - encrypting: `true` to encrypt, `false` to decrypt.
    ///   - key: Key bytes of the cipher's key length (checked by the caller).
    ///   - iv: IV or nonce bytes of the cipher's default IV length (checked by the caller).
    /// - Throws: `.libcrypto` if allocation or initialisation fails.
    init(cipher: OpaquePointer?, encrypting: Bool, key: [UInt8], iv: [UInt8]) throws(PrimitivesError) {
        guard let context = EVP_CIPHER_CTX_new() else { throw .libcrypto("EVP_CIPHER_CTX_new") }
        self.context = context
        let status = key.withNonNullBytes { keyBytes, _ in
            iv.withNonNullBytes { ivBytes, _ in
                EVP_CipherInit_ex(context, cipher, nil, keyBytes, ivBytes, encrypting ? 1 : 0)
            }
        }
        guard status == 1 else { throw .libcrypto("EVP_CipherInit_ex") }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Feeds additional authenticated data (AEAD ciphers only); produces no output.
    func authenticate(_ aad: [UInt8]) throws(PrimitivesError) {
        try aad.withNonNullBytes { (input, count) throws(PrimitivesError) in
            _ = try update(input, count: count, output: nil)
        }
    }

    /// Encrypts or decrypts `input` with a stream mode (CTR, GCM), whose output is as long as its input.
    func transform(_ input: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: input.count)
        let written = try input.withNonNullBytes { (inputBytes, count) throws(PrimitivesError) in
            try output.withUnsafeMutableBufferPointer { (buffer) throws(PrimitivesError) -> Int in
                try update(inputBytes, count: count, output: buffer.baseAddress)
            }
        }
        guard written == input.count else {
            throw PrimitivesError(.libcrypto, "EVP_CipherUpdate wrote \(written) of \(input.count) bytes")
        }
        return output
    }

    /// Encrypts or decrypts `input` with a padded block mode (CBC): update, then final, whose output
    /// (the last block, or the plaintext's tail once the padding is stripped) is appended.
    ///
    /// - Throws: `.invalidInput` when libcrypto rejects the final block (bad padding on decryption).
    func padded(_ input: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: input.count + 32)
        let written = try input.withNonNullBytes { (inputBytes, count) throws(PrimitivesError) in
            try output.withUnsafeMutableBufferPointer { (buffer) throws(PrimitivesError) -> Int in
                try update(inputBytes, count: count, output: buffer.baseAddress)
            }
        }
        var tail: Int32 = 0
        let status = output.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(context, $0.baseAddress! + written, &tail) }
        guard status == 1 else {
            _ = LibcryptoErrorQueue.drain()
            output.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
            throw PrimitivesError(.invalidInput, "EVP_CipherFinal_ex rejected the final block (padding)")
        }
        let total = written + Int(tail)
        output.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress! + total, $0.count - total) }
        output.removeLast(output.count - total)
        return output
    }

    /// Finishes a stream-mode operation, which must not produce further output.
    ///
    /// - Returns: `false` when libcrypto rejects the operation; for AEAD decryption that means the tag
    ///   did not verify.
    func finish() -> Bool {
        var scratch = [UInt8](repeating: 0, count: 32)
        var written: Int32 = 0
        let status = scratch.withUnsafeMutableBufferPointer {
            EVP_CipherFinal_ex(context, $0.baseAddress, &written)
        }
        return status == 1 && written == 0
    }

    /// Reads the GCM tag after a successful `finish()` when encrypting.
    func gcmTag(byteCount: Int) throws(PrimitivesError) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: byteCount)
        let status = tag.withUnsafeMutableBytes {
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(byteCount), $0.baseAddress)
        }
        guard status == 1 else { throw .libcrypto("EVP_CIPHER_CTX_ctrl(GET_TAG)") }
        return tag
    }

    /// Sets the expected GCM tag before `finish()` when decrypting.
    func setGCMTag(_ tag: [UInt8]) throws(PrimitivesError) {
        var copy = tag
        let status = copy.withUnsafeMutableBytes {
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32($0.count), $0.baseAddress)
        }
        guard status == 1 else { throw .libcrypto("EVP_CIPHER_CTX_ctrl(SET_TAG)") }
    }

    /// Runs `EVP_CipherUpdate` over `count` bytes in `int`-sized chunks.
    ///
    /// - Returns: How many bytes libcrypto reported as written (for AAD, with a nil `output`, GCM reports
    ///   the AAD length).
    private func update(
        _ input: UnsafePointer<UInt8>, count: Int, output: UnsafeMutablePointer<UInt8>?
    ) throws(PrimitivesError) -> Int {
        var consumed = 0
        var produced = 0
        while consumed < count {
            let chunk = Swift.min(count - consumed, Self.maximumChunk)
            var written: Int32 = 0
            let destination = output.map { $0 + produced }
            let status = EVP_CipherUpdate(context, destination, &written, input + consumed, Int32(chunk))
            guard status == 1 else { throw .libcrypto("EVP_CipherUpdate") }
            consumed += chunk
            produced += Int(written)
        }
        return produced
    }
}
