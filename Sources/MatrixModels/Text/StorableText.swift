/// Text that came from a remote user or server, made fit for a PostgreSQL `text` column.
///
/// Any string a user controls may hold any code point, NUL included (JSON's `\u0000`), and PostgreSQL
/// refuses NUL in `text` and `jsonb`. Raw event JSON is therefore stored as (sealed) bytes; the few
/// short strings kept as text (a withheld notice's reason, a room's algorithm name) go through here.
extension String {
    /// Whether PostgreSQL can store the string in a `text` column as it is.
    public var isStorableText: Bool { !utf8.contains(0) }

    /// The string with NUL and other C0 control characters replaced by U+FFFD and cut to at most
    /// `maxLength` characters: for free text we keep only to show an operator.
    public func storableText(maxLength: Int) -> String {
        var scalars = String.UnicodeScalarView()
        var count = 0
        for scalar in unicodeScalars {
            guard count < maxLength else { break }
            scalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "\u{FFFD}" : scalar)
            count += 1
        }
        return String(scalars)
    }
}
