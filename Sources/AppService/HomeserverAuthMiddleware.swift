import Hummingbird
import Primitives

/// Admits only requests that carry the homeserver's `hs_token`.
///
/// The token comes in `Authorization: Bearer …` (spec v1.4+) or, from older homeservers, the
/// `access_token` query parameter. It is compared in constant time so response timing reveals nothing
/// about how much of a guess was right. Missing → 401 `M_MISSING_TOKEN`; wrong → 403 `M_FORBIDDEN`.
public struct HomeserverAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let expected: [UInt8]
    /// Whose token, for the error text ("homeserver", "bridge API").
    let name: String
    /// Whether the legacy `access_token` query parameter is read (homeservers only: a token in a URL
    /// ends up in access logs and proxies' histories, so the bridge API takes the header only).
    let acceptsQueryToken: Bool

    /// - Parameters:
    ///   - name: Also guards the bridge API with its own token; the name goes into error texts.
    ///   - acceptsQueryToken: False: only `Authorization: Bearer`; a query token is refused (400).
    public init(hsToken: String, name: String = "homeserver", acceptsQueryToken: Bool = true) {
        self.expected = Array(hsToken.utf8)
        self.name = name
        self.acceptsQueryToken = acceptsQueryToken
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if !acceptsQueryToken, request.uri.queryParameters["access_token"] != nil {
            throw MatrixHTTPError(.badRequest, "M_INVALID_PARAM", "The \(name) takes its token in the Authorization header only, never in the URL")
        }
        guard let presented = Self.token(in: request, query: acceptsQueryToken) else { throw MatrixHTTPError.missingToken(name) }
        guard constantTimeEquals(Array(presented.utf8), expected) else { throw MatrixHTTPError.forbidden(name) }
        return try await next(request, context)
    }

    /// The token the request presents, header first.
    static func token(in request: Request, query: Bool) -> Substring? {
        if let header = request.headers[.authorization] {
            let prefix = "Bearer "
            guard header.count > prefix.count,
                header.prefix(prefix.count).lowercased() == prefix.lowercased()
            else { return nil }
            return header.dropFirst(prefix.count)
        }
        if query, let token = request.uri.queryParameters["access_token"], !token.isEmpty {
            return token
        }
        return nil
    }
}
