import Primitives

/// A master key as people compare it: its base64, in groups of four for reading aloud.
///
/// The fingerprint is the key itself (public), so showing it leaks nothing; it is compared in
/// constant time anyway, as the check an admin's vouch rests on.
public enum MasterKeyFingerprint {
    /// `key` in groups of four characters, separated by spaces.
    public static func grouped(_ key: String) -> String {
        var groups: [Substring] = []
        var rest = Substring(key)
        while !rest.isEmpty {
            groups.append(rest.prefix(4))
            rest = rest.dropFirst(4)
        }
        return groups.joined(separator: " ")
    }

    /// What an admin typed, without the spaces (or other whitespace) that group it.
    public static func normalized(_ typed: String) -> String {
        String(typed.unicodeScalars.filter { !$0.properties.isWhitespace }.map(Character.init))
    }

    /// Whether `typed` (normalized) is `key`, compared in constant time.
    public static func matches(_ typed: String, _ key: String) -> Bool {
        constantTimeEquals(Array(normalized(typed).utf8), Array(key.utf8))
    }
}
