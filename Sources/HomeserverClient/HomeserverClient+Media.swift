import AsyncHTTPClient
import MatrixModels

/// A media download refused before or while reading it because it is larger than allowed.
public struct MediaTooLarge: Error, Sendable, CustomStringConvertible {
    /// Stable, for logs and for callers that branch without matching the type.
    public var code: String { "media_too_large" }
    public var limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    public var description: String { "\(code): media larger than \(limit) bytes" }
}

extension HomeserverClient {
    /// Downloads a file from the media repository with authenticated media (Matrix 1.11,
    /// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`), as `userID` (the appservice
    /// token masquerading with `user_id`), reading at most `maxBytes`.
    ///
    /// Retried like every request (transport failures, 429, 5xx); a file over the limit is not.
    /// - Throws: ``MediaTooLarge`` (a `Content-Length` over the limit, or a body that grows past it),
    ///   ``HomeserverError`` for any other non-2xx answer (404 `M_NOT_FOUND`: no such media).
    public func downloadMedia(server: String, mediaID: String, as userID: UserID, maxBytes: Int) async throws -> [UInt8] {
        let path = "/_matrix/client/v1/media/download/\(Self.encode(server))/\(Self.encode(mediaID))"
        let body = try await perform(
            .GET, url: baseURL + path + "?user_id=" + Self.encode(userID.rawValue), label: "GET \(path)", body: nil, json: false, limit: maxBytes)
        return Array(body.readableBytesView)
    }
}
