extension Base64 {
    /// One of the two RFC 4648 alphabets, with its reverse lookup table.
    struct Alphabet: Sendable {
        /// Marks a byte that is not in the alphabet; any value with the top bit set would do.
        static let invalid: UInt8 = 0xFF

        static let standard = Alphabet(name: "base64", last2: "+/")
        static let urlSafe = Alphabet(name: "URL-safe base64", last2: "-_")

        /// For error messages.
        let name: String
        /// Six-bit value → ASCII character.
        let encoding: [UInt8]
        /// ASCII character → six-bit value, or ``invalid``.
        let decoding: [UInt8]

        private init(name: String, last2: String) {
            let encoding = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8) + Array(last2.utf8)
            var decoding = [UInt8](repeating: Self.invalid, count: 256)
            for (value, character) in encoding.enumerated() {
                decoding[Int(character)] = UInt8(value)
            }
            self.name = name
            self.encoding = encoding
            self.decoding = decoding
        }
    }
}
