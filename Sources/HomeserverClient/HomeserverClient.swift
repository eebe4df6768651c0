import AsyncHTTPClient
import Foundation
import Logging
import MatrixModels
import NIOCore
import NIOHTTP1

/// The only code that talks HTTP to the homeserver: the client-server API as the appservice, acting
/// for the bot or a puppet and one of its devices (masquerading).
///
/// Rate limits (429) wait `retry_after_ms` and retry; 5xx and transport failures back off
/// (250 ms doubling, up to ``maxAttempts``); other 4xx are returned at once as ``HomeserverError``.
public struct HomeserverClient: Sendable {
    public let baseURL: String
    let asToken: String
    let http: HTTPClient
    public var maxAttempts = 5
    /// Longest single wait the client accepts from a 429 before giving up on the request.
    public var maxRetryAfter: Duration = .seconds(30)
    /// How long one attempt may take, connecting included (a refused connection is retried until
    /// then): `sealbridge doctor` wants a quick answer about a server that is down.
    public var requestTimeout: Duration = .seconds(60)
    let logger: Logger

    /// - Parameters:
    ///   - baseURL: `homeserver.url`, e.g. `http://127.0.0.1:8008`.
    ///   - asToken: The appservice token, sent as `Authorization: Bearer`.
    public init(baseURL: String, asToken: String, http: HTTPClient = .shared, logger: Logger = Logger(label: "sealbridge.homeserver")) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.asToken = asToken
        self.http = http
        self.logger = logger
    }

    /// Whom a request acts for: a namespace user and, for device-bound endpoints, one of its devices.
    public struct Identity: Sendable, Hashable {
        public var userID: UserID
        public var deviceID: DeviceID?

        public init(userID: UserID, deviceID: DeviceID? = nil) {
            self.userID = userID
            self.deviceID = deviceID
        }
    }

    /// Sends one request and returns the JSON response body.
    ///
    /// - Parameters:
    ///   - path: Starting with `/_matrix/`, already percent-encoded where needed.
    ///   - as: Masquerade as this user (and device: both `device_id` and the older
    ///     `org.matrix.msc3202.device_id` are sent, since homeservers differ on which they read).
    public func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], as identity: Identity? = nil, body: JSONValue? = nil
    ) async throws -> JSONValue {
        var parameters = query
        if let identity {
            parameters.append(("user_id", identity.userID.rawValue))
            if let device = identity.deviceID {
                parameters.append(("device_id", device.rawValue))
                parameters.append(("org.matrix.msc3202.device_id", device.rawValue))
            }
        }
        var url = baseURL + path
        if !parameters.isEmpty {
            url += "?" + parameters.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        let label = "\(method.rawValue) \(path)"
        let bytes: ByteBuffer
        do {
            bytes = try await perform(
                method, url: url, label: label, body: body.map { $0.serialized() }, json: true, limit: Self.maxAnswerBytes)
        } catch let error as MediaTooLarge {
            throw HomeserverError(status: 0, errcode: nil, message: "\(error)", request: label)
        }
        return (try? JSONValue.parse(bytes.readableBytesView)) ?? .object([:])
    }

    /// The largest JSON answer ``request(_:_:query:as:body:)`` reads.
    static let maxAnswerBytes = 64 * 1024 * 1024

    /// Sends one request with the retry policy above and returns the body of its 2xx answer.
    ///
    /// - Parameters:
    ///   - json: Sends `Content-Type: application/json` (with or without a body, as the API calls expect).
    ///   - limit: The most bytes of a 2xx answer read; more (announced by `Content-Length` or read)
    ///     ends the request at once, not retried.
    /// - Throws: ``MediaTooLarge`` past `limit`; ``HomeserverError`` for any other non-2xx answer
    ///   (its `errcode` and `error` from the JSON body) or when the attempts run out.
    func perform(_ method: HTTPMethod, url: String, label: String, body: [UInt8]?, json: Bool, limit: Int) async throws -> ByteBuffer {
        var delay = Duration.milliseconds(250)
        var attempt = 1
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(asToken)")
            if json { request.headers.add(name: "Content-Type", value: "application/json") }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let status: Int, answer: ByteBuffer, headers: HTTPHeaders
            do {
                let response = try await http.execute(request, timeout: .init(requestTimeout))
                status = Int(response.status.code)
                headers = response.headers
                if (200..<300).contains(status) {
                    if let length = headers.first(name: "Content-Length").flatMap(Int.init), length > limit { throw MediaTooLarge(limit: limit) }
                    do {
                        answer = try await response.body.collect(upTo: limit)
                    } catch is NIOTooManyBytesError {
                        throw MediaTooLarge(limit: limit)
                    }
                } else {
                    // An error answer's text, if it is short enough to be one.
                    answer = (try? await response.body.collect(upTo: 64 * 1024)) ?? ByteBuffer()
                }
            } catch let error as MediaTooLarge {
                throw error
            } catch {
                guard attempt < maxAttempts else {
                    throw HomeserverError(status: 0, errcode: nil, message: "\(error)", request: label)
                }
                logger.warning("homeserver unreachable; retrying", metadata: ["request": "\(label)", "attempt": "\(attempt)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
                attempt += 1
                continue
            }
            if (200..<300).contains(status) { return answer }
            let json = (try? JSONValue.parse(answer.readableBytesView)) ?? .object([:])
            switch status {
            case 429 where attempt < maxAttempts:
                let retryAfter = json["retry_after_ms"]?.integerValue.map { Duration.milliseconds($0) }
                    ?? headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
                let wait = min(retryAfter ?? delay, maxRetryAfter)
                logger.notice("rate limited by the homeserver", metadata: ["request": "\(label)", "wait_ms": "\(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)"])
                try await Task.sleep(for: wait)
            case 500..<600 where attempt < maxAttempts:
                logger.warning("homeserver error; retrying", metadata: ["request": "\(label)", "status": "\(status)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            default:
                throw HomeserverError(
                    status: status, errcode: json["errcode"]?.stringValue, message: json["error"]?.stringValue ?? "no error text", request: label)
            }
            attempt += 1
        }
    }

    /// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
    public static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .init(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? text
    }
}
