import AsyncHTTPClient
import MatrixModels
import NIOCore
import NIOHTTP1

/// A media download refused before or while reading it because it is larger than allowed.
public struct MediaTooLarge: Error, Sendable, CustomStringConvertible {
    public var limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    public var description: String { "media larger than \(limit) bytes" }
}

extension HomeserverClient {
    /// Downloads a file from the media repository with authenticated media (Matrix 1.11,
    /// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`), as `userID` (the appservice
    /// token masquerading with `user_id`), reading at most `maxBytes`.
    ///
    /// One attempt per call except for 5xx and transport failures, retried like other requests.
    /// - Throws: ``MediaTooLarge`` (a `Content-Length` over the limit, or a body that grows past it),
    ///   ``HomeserverError`` for any other non-2xx answer (404 `M_NOT_FOUND`: no such media).
    public func downloadMedia(server: String, mediaID: String, as userID: UserID, maxBytes: Int) async throws -> [UInt8] {
        let path = "/_matrix/client/v1/media/download/\(Self.encode(server))/\(Self.encode(mediaID))"
        let url = baseURL + path + "?user_id=" + Self.encode(userID.rawValue)
        let label = "GET \(path)"
        var delay = Duration.milliseconds(250)
        for attempt in 1...maxAttempts {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers.add(name: "Authorization", value: "Bearer \(asToken)")
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .init(requestTimeout))
            } catch {
                if attempt == maxAttempts { throw HomeserverError(status: 0, errcode: nil, message: "\(error)", request: label) }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
                continue
            }
            let status = Int(response.status.code)
            if (200..<300).contains(status) {
                if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBytes {
                    throw MediaTooLarge(limit: maxBytes)
                }
                do {
                    let body = try await response.body.collect(upTo: maxBytes)
                    return Array(body.readableBytesView)
                } catch is NIOTooManyBytesError {
                    throw MediaTooLarge(limit: maxBytes)
                }
            }
            let text = (try? await response.body.collect(upTo: 64 * 1024)).flatMap { try? JSONValue.parse($0.readableBytesView) } ?? .object([:])
            if status >= 500, attempt < maxAttempts {
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
                continue
            }
            throw HomeserverError(
                status: status, errcode: text["errcode"]?.stringValue, message: text["error"]?.stringValue ?? "no error text", request: label)
        }
        throw HomeserverError(status: 0, errcode: nil, message: "no attempt made", request: label)
    }
}
