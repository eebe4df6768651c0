/// Why a transaction body was refused: not JSON at all, or not a JSON object.
///
/// Nothing inside the object refuses a transaction: bad entries are left out and counted in
/// ``AppserviceTransaction/skipped``, because the homeserver retries a refused transaction forever and
/// loses its to-device messages on the way.
public struct TransactionDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The body does not parse as JSON: truncated, unbalanced brackets, garbage around the object (`M_NOT_JSON`).
        case notJSON
        /// The body is JSON but not an object (`M_BAD_JSON`).
        case badJSON
    }

    public var kind: Kind
    /// Says what is wrong and where (a byte offset); never quotes event content.
    public var message: String

    public var description: String { message }
}
