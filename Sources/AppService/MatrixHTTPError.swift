import Hummingbird
import MatrixModels

/// A Matrix error answer: an HTTP status and a `{"errcode", "error"}` body.
///
/// Every refusal the front door gives goes through this type so the homeserver (and an operator reading
/// its logs) always sees the standard error shape rather than a bare status.
public struct MatrixHTTPError: HTTPResponseError, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// The Matrix error code, e.g. `M_FORBIDDEN`.
    public var errcode: String
    /// A human-readable explanation; never contains tokens or event content.
    public var message: String

    public init(_ status: HTTPResponse.Status, _ errcode: String, _ message: String) {
        self.status = status
        self.errcode = errcode
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body: JSONValue = ["errcode": .string(errcode), "error": .string(message)]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }
}

extension MatrixHTTPError {
    static func missingToken(_ name: String = "homeserver") -> Self { Self(.unauthorized, "M_MISSING_TOKEN", "Missing \(name) token") }
    static func forbidden(_ name: String = "homeserver") -> Self { Self(.forbidden, "M_FORBIDDEN", "Invalid \(name) token") }
    static func tooLarge(limit: Int) -> Self {
        Self(.contentTooLarge, "M_TOO_LARGE", "Request body exceeds \(limit) bytes")
    }
    static func notJSON(_ detail: String) -> Self { Self(.badRequest, "M_NOT_JSON", "Body is not valid JSON: \(detail)") }
    static func badJSON(_ detail: String) -> Self { Self(.badRequest, "M_BAD_JSON", detail) }
    static func notFound(_ detail: String) -> Self { Self(.notFound, "M_NOT_FOUND", detail) }
    static func unknown(_ detail: String) -> Self { Self(.internalServerError, "M_UNKNOWN", detail) }
}
