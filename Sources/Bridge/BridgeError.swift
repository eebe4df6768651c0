/// A refusal of the bridge API, mapped to a Matrix error (`{"errcode","error"}`) at the HTTP edge.
public struct BridgeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The `as` user is neither the bot nor in the puppet namespace.
        case notLocalUser = "M_FORBIDDEN"
        /// A parameter or body is not what the endpoint takes.
        case badRequest = "M_BAD_JSON"
        /// A send with the same (sender, txn id) is still running: answered 409, retry later.
        case sendInProgress = "M_CONFLICT"
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
