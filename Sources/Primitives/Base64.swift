/// Base64 (RFC 4648) in the standard and URL-safe alphabets, written for speed and strictness.
///
/// Matrix puts unpadded standard base64 everywhere (keys, signatures, ciphertexts), so that is the
/// default encoding. Decoding accepts padded or unpadded input and rejects everything else: characters
/// outside the alphabet (including whitespace and the other alphabet's `-`/`_` or `+`/`/`), padding
/// anywhere but the end, padding that makes the length not a multiple of 4, lengths that cannot
/// occur (4n + 1), and non-zero trailing bits. Rejecting trailing bits makes the encoding canonical,
/// one string per byte sequence, which matters where Matrix compares base64 strings as identifiers;
/// conforming encoders never set those bits.
public enum Base64 {
    /// Encodes without `=` padding, in the standard alphabet (`+`, `/`): Matrix's form.
    public static func encodeUnpadded(_ bytes: [UInt8]) -> String {
        encode(bytes, alphabet: Alphabet.standard, padded: false)
    }

    /// Encodes with `=` padding, in the standard alphabet.
    public static func encodePadded(_ bytes: [UInt8]) -> String {
        encode(bytes, alphabet: Alphabet.standard, padded: true)
    }

    /// Encodes without padding in the URL-safe alphabet (`-`, `_`), for URLs and file names.
    public static func encodeURLSafeUnpadded(_ bytes: [UInt8]) -> String {
        encode(bytes, alphabet: Alphabet.urlSafe, padded: false)
    }

    /// Decodes standard-alphabet base64, padded or unpadded.
    ///
    /// - Parameter string: The encoded text; no whitespace allowed.
    /// - Returns: The decoded bytes.
    /// - Throws: `.invalidBase64`, saying what is wrong and where, never echoing the input.
    public static func decode(_ string: String) throws(PrimitivesError) -> [UInt8] {
        try decode(string, alphabet: Alphabet.standard)
    }

    /// Decodes URL-safe-alphabet base64, padded or unpadded.
    ///
    /// - Parameter string: The encoded text; no whitespace allowed.
    /// - Returns: The decoded bytes.
    /// - Throws: `.invalidBase64`.
    public static func decodeURLSafe(_ string: String) throws(PrimitivesError) -> [UInt8] {
        try decode(string, alphabet: Alphabet.urlSafe)
    }
}
