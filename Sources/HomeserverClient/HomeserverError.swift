/// A refusal or failure from the homeserver, with the Matrix `errcode` when it sent one.
public struct HomeserverError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status; 0 when no response arrived (connection refused, timeout).
    public var status: Int
    /// `M_FORBIDDEN`, `M_UNKNOWN_DEVICE`, … or nil.
    public var errcode: String?
    /// The homeserver's `error` text or the transport failure; never contains tokens.
    public var message: String
    /// The request, as `METHOD /path` without query (which may carry masquerading ids but no token).
    public var request: String

    public var description: String {
        "\(request) → \(status == 0 ? "no response" : String(status)) \(errcode ?? ""): \(message)"
    }
}
