extension AES256GCM {
    /// The output of ``AES256GCM/seal(_:key:nonce:authenticating:)``: nonce, ciphertext and tag.
    ///
    /// Store or send ``combined`` (nonce ‖ ciphertext ‖ tag) and rebuild with ``init(combined:)``; the
    /// layout matches CryptoKit's, so the bytes are self-describing given the algorithm.
    public struct SealedBox: Sendable, Equatable {
        /// The 12-byte nonce.
        public let nonce: [UInt8]
        /// The ciphertext, as long as the plaintext.
        public let ciphertext: [UInt8]
        /// The 16-byte authentication tag.
        public let tag: [UInt8]

        /// Assembles a box from its parts.
        ///
        /// - Parameters:
        ///   - nonce: 12 bytes.
        ///   - ciphertext: Any length.
        ///   - tag: 16 bytes.
        /// - Throws: `.invalidNonceLength` or `.invalidInput` (wrong tag length).
        public init(nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) throws(PrimitivesError) {
            try AES256GCM.checkNonce(nonce)
            guard tag.count == AES256GCM.tagByteCount else {
                throw PrimitivesError(.invalidInput, "AES-256-GCM tag must be \(AES256GCM.tagByteCount) bytes, got \(tag.count) bytes")
            }
            self.init(validatedNonce: nonce, ciphertext: ciphertext, tag: tag)
        }

        /// Splits nonce ‖ ciphertext ‖ tag.
        ///
        /// - Parameter combined: At least 28 bytes (12-byte nonce, 16-byte tag, empty ciphertext).
        /// - Throws: `.invalidInput` if too short to hold a nonce and a tag.
        public init(combined: [UInt8]) throws(PrimitivesError) {
            let overhead = AES256GCM.nonceByteCount + AES256GCM.tagByteCount
            guard combined.count >= overhead else {
                throw PrimitivesError(.invalidInput, "AES-256-GCM combined box needs at least \(overhead) bytes, got \(combined.count) bytes")
            }
            let tagStart = combined.count - AES256GCM.tagByteCount
            self.init(
                validatedNonce: Array(combined[..<AES256GCM.nonceByteCount]),
                ciphertext: Array(combined[AES256GCM.nonceByteCount..<tagStart]),
                tag: Array(combined[tagStart...]))
        }

        init(validatedNonce nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
            self.nonce = nonce
            self.ciphertext = ciphertext
            self.tag = tag
        }

        /// nonce ‖ ciphertext ‖ tag, the form to store or transmit.
        public var combined: [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(nonce.count + ciphertext.count + tag.count)
            bytes += nonce
            bytes += ciphertext
            bytes += tag
            return bytes
        }
    }
}
