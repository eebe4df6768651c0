import Logging
import MatrixCrypto
import MatrixModels
import ServiceLifecycle

extension CryptoEngine {
    /// Asks the homeserver for a device's one-time key count (an empty `/keys/upload`) and tops it up.
    ///
    /// Counts ride on transactions only when the device is concerned by one; an idle puppet whose
    /// keys were claimed would otherwise never hear of it.
    public func checkOneTimeKeys(_ device: DeviceRef) async throws {
        let counts = try await transport.uploadKeys([:], as: device.userID, device: device.deviceID)
        let uploads = try await step { () -> (CryptoChanges, [KeysUpload]) in
            try await machine.replenish(counts: [device.userID: [device.deviceID: counts]])
        }
        for upload in uploads { try await self.upload(upload) }
    }
}

/// Walks every local device in pages, checking one page of one-time key counts per tick, so every
/// device is checked now and then at a bounded request rate.
public struct OneTimeKeyCheckService: Service {
    let engine: CryptoEngine
    let store: any CryptoStore
    let interval: Duration
    let pageSize: Int
    let logger: Logger

    /// - Parameters:
    ///   - interval: Time between two pages (default one minute).
    ///   - pageSize: Devices checked per page (default 50: 10,000 puppets are covered in about 3.5 hours).
    public init(engine: CryptoEngine, store: any CryptoStore, interval: Duration = .seconds(60), pageSize: Int = 50, logger: Logger) {
        self.engine = engine
        self.store = store
        self.interval = interval
        self.pageSize = pageSize
        self.logger = logger
    }

    public func run() async throws {
        // Shutdown cancels the wait (and a page in progress: the next start begins again).
        try? await cancelWhenGracefulShutdown {
            var cursor: UserID?
            while true {
                try await Task.sleep(for: interval)
                cursor = await checkPage(after: cursor)
            }
        }
    }

    /// Checks one page; returns where the next page starts (nil: from the beginning).
    public func checkPage(after cursor: UserID?) async -> UserID? {
        do {
            let page = try await store.localDevices(after: cursor, limit: pageSize)
            for device in page {
                do {
                    try await engine.checkOneTimeKeys(device)
                } catch {
                    logger.warning("one-time key check failed", metadata: ["user": "\(device.userID)", "error": "\(error)"])
                }
            }
            return page.count < pageSize ? nil : page.last?.userID
        } catch {
            logger.warning("one-time key check could not list devices", metadata: ["error": "\(error)"])
            return cursor
        }
    }
}
