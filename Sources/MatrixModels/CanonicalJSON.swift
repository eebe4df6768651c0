/// Canonical JSON as the Matrix spec defines it (appendix "Canonical JSON"): the exact bytes that
/// signatures and hashes cover.
///
/// Keys sorted by code point, no insignificant whitespace, UTF-8 with the shortest escapes, integers
/// only and only within ±(2^53 − 1). Anything else has no canonical form and is refused, so we never
/// sign or verify bytes another implementation would serialise differently.
public enum CanonicalJSON {
    /// The canonical bytes of `value`.
    ///
    /// - Throws: ``JSONError`` with code `notCanonical` for floats or out-of-range integers.
    public static func encode(_ value: JSONValue) throws(JSONError) -> [UInt8] {
        var writer = JSONWriter(canonical: true)
        try writer.write(value)
        return writer.output
    }

    /// ``encode(_:)`` as a String.
    public static func string(_ value: JSONValue) throws(JSONError) -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }

    /// `object` without its top-level `signatures` and `unsigned` members: what a signature covers.
    public static func removingSignaturesAndUnsigned(_ object: JSONValue) -> JSONValue {
        guard case .object(var members) = object else { return object }
        members["signatures"] = nil
        members["unsigned"] = nil
        return .object(members)
    }
}
