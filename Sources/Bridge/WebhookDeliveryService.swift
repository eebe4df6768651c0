import AsyncHTTPClient
import Foundation
import Logging
import MatrixModels
import NIOCore
import Primitives
import ServiceLifecycle

/// Pushes the outbox to the bridge logic's webhook: batches in order, each `POST` signed with
/// HMAC-SHA256 over the exact body, acknowledged only on a 2xx answer, retried with backoff (1 s
/// doubling to 60 s) while the consumer is down. Nothing is lost: the rows stay until acknowledged,
/// across restarts.
public struct WebhookDeliveryService: Service {
    /// The header carrying `sha256=<hex HMAC-SHA256(secret, body)>`.
    public static let signatureHeader = "X-Sealbridge-Signature"

    let outbox: Outbox
    let url: String
    let secret: [UInt8]
    let http: HTTPClient
    let batchSize: Int
    let logger: Logger

    public init(outbox: Outbox, url: String, secret: String, http: HTTPClient = .shared, batchSize: Int = 100, logger: Logger) {
        self.outbox = outbox
        self.url = url
        self.secret = Array(secret.utf8)
        self.http = http
        self.batchSize = batchSize
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var delay = Duration.seconds(1)
            while !Task.isCancelled {
                do {
                    // Acknowledged rows are deleted, so what is left starts at the oldest undelivered one.
                    let batch = try await outbox.next(after: 0, limit: batchSize, timeout: .seconds(30))
                    guard let last = batch.last else { continue }
                    try await post(batch)
                    try await outbox.acknowledge(through: last.id)
                    delay = .seconds(1)
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("webhook delivery failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(60))
                }
            }
        }
    }

    /// One signed `POST {"events": [...]}`; throws unless the answer is 2xx.
    func post(_ batch: [Outbox.Entry]) async throws {
        let body = JSONValue.object(["events": .array(batch.map(\.delivery))]).serialized()
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: Self.signatureHeader, value: Self.signature(body, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(30))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw WebhookError(status: Int(response.status.code))
        }
    }

    public static func signature(_ body: [UInt8], secret: [UInt8]) -> String {
        "sha256=" + Hex.encode(HMACSHA256.authenticationCode(for: body, key: secret))
    }
}

/// The webhook answered with something other than 2xx.
struct WebhookError: Error, CustomStringConvertible {
    var status: Int
    var description: String { "webhook answered HTTP \(status)" }
}
