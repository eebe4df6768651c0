import Logging
import Postgres
import ServiceLifecycle

/// Forgets bridge API send records older than a day, hourly: a client retrying a send does so within
/// seconds or minutes, and the table would otherwise grow with every message the bridge sends.
public struct BridgeHousekeepingService: Service {
    let client: PostgresClient
    let interval: Duration
    let logger: Logger

    public init(client: PostgresClient, interval: Duration = .seconds(3600), logger: Logger) {
        self.client = client
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await forgetOldSends()
                } catch {
                    logger.warning("could not prune bridge API send records", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// - Returns: How many records were deleted.
    @discardableResult
    public func forgetOldSends() async throws -> Int {
        try await client.execute("DELETE FROM sealbridge_bridge_sends WHERE sent_at < now() - interval '1 day'")
    }
}
