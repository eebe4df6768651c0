import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import ServiceLifecycle
import Synchronization

extension CryptoEngine {
    /// Asks the homeserver for a device's one-time key count (an empty `/keys/upload`) and tops it up.
    ///
    /// Counts ride on transactions only when the device is concerned by one; an idle puppet whose
    /// keys were claimed would otherwise never hear of it.
    public func checkOneTimeKeys(_ device: DeviceRef) async throws {
        _ = try await checkOneTimeKeys([device])
    }

    /// ``checkOneTimeKeys(_:)`` for many devices: the counts are asked `concurrency` at a time, the
    /// top-ups of all of them made in one crypto step (one commit), then uploaded.
    ///
    /// A device found with no one-time key left also gets a new fallback key: the old one may have
    /// been handed out (see ``CryptoMachine/replenish(counts:rotateFallbackWhenExhausted:)``).
    ///
    /// - Returns: The devices that needed keys, how many of them got a new fallback key, and the
    ///   devices whose count could not be read.
    @discardableResult
    public func checkOneTimeKeys(
        _ devices: [DeviceRef], concurrency: Int = 4
    ) async throws -> (toppedUp: Int, fallbackRotated: Int, failed: [DeviceRef]) {
        var counts: [UserID: [DeviceID: [String: Int]]] = [:]
        var failed: [DeviceRef] = []
        let transport = transport
        try await withThrowingTaskGroup(of: (DeviceRef, [String: Int]?).self) { group in
            var next = devices.makeIterator()
            func add() {
                guard let device = next.next() else { return }
                group.addTask { (device, try? await transport.uploadKeys([:], as: device.userID, device: device.deviceID)) }
            }
            for _ in 0..<max(1, concurrency) { add() }
            while let (device, reported) = try await group.next() {
                if let reported { counts[device.userID, default: [:]][device.deviceID] = reported } else { failed.append(device) }
                add()
            }
        }
        guard !counts.isEmpty else { return (0, 0, failed) }
        let uploads = try await step { () -> (CryptoChanges, [KeysUpload]) in
            try await machine.replenish(counts: counts, rotateFallbackWhenExhausted: true)
        }
        for upload in uploads { try await self.upload(upload) }
        return (uploads.count, uploads.filter { !$0.fallbackKeys.isEmpty }.count, failed)
    }
}

/// Walks every local device at a steady rate, reading its one-time key count from the homeserver and
/// topping it up, so that a puppet whose keys are claimed while it is idle (no transaction tells us)
/// never runs dry: a full pass over 10,000 devices at the default 20 a second takes about 8 minutes,
/// and a new pass starts at most every ``passInterval``.
///
/// With a ``DeviceCheck``, each page is first compared with what the homeserver serves (one
/// `/keys/query` per page): a device that is gone (logged out by an admin, deleted by the homeserver's
/// stale-device cleanup) or that carries another account's keys is replaced by a new one.
///
/// Cheap for the homeserver: one empty `/keys/upload` per device (a count read), a few at a time,
/// and one keys query per page.
public final class OneTimeKeyCheckService: Service, Sendable {
    /// What `status` shows of the walk.
    public struct Progress: Sendable, Equatable {
        public var running = false
        /// Devices checked in the current (or last) pass, and how many needed keys.
        public var checked = 0
        public var toppedUp = 0
        /// Devices found without one-time keys, whose fallback key was replaced.
        public var fallbackRotated = 0
        public var failed = 0
        /// Devices replaced because the homeserver lost them or serves other keys for them.
        public var replaced = 0
        public var lastPassDevices: Int?
        public var lastPassFinishedAt: Date?
        public var lastPassSeconds: Double?
    }

    /// How to check that local devices are still there with their keys, and replace those that are not.
    public struct DeviceCheck: Sendable {
        /// Who asks the homeserver (the bot).
        public var requester: UserID
        /// The id a replacement starts from (a fresh suffix is added) and its display name.
        public var preferredDeviceID: DeviceID
        public var displayName: @Sendable (UserID) -> String
        /// Told after each replacement (an admin notice).
        public var onReplaced: @Sendable (_ old: DeviceRef, _ new: DeviceID, _ state: LocalDeviceState) async -> Void

        public init(
            requester: UserID, preferredDeviceID: DeviceID, displayName: @escaping @Sendable (UserID) -> String,
            onReplaced: @escaping @Sendable (DeviceRef, DeviceID, LocalDeviceState) async -> Void = { _, _, _ in }
        ) {
            self.requester = requester
            self.preferredDeviceID = preferredDeviceID
            self.displayName = displayName
            self.onReplaced = onReplaced
        }
    }

    let engine: CryptoEngine
    let store: any CryptoStore
    let deviceCheck: DeviceCheck?
    let pageSize: Int
    /// Time between two pages: the rate is pageSize per pageInterval.
    let pageInterval: Duration
    let passInterval: Duration
    let logger: Logger
    private let state = Mutex(Progress())

    /// - Parameters:
    ///   - devicesPerSecond: The walk's pace (default 20: 10,000 devices in about 8 minutes).
    ///   - pageSize: Devices read per page and topped up per commit (default 100).
    ///   - passInterval: Shortest time from the start of one pass to the start of the next (default an hour).
    public init(
        engine: CryptoEngine, store: any CryptoStore, deviceCheck: DeviceCheck? = nil, devicesPerSecond: Int = 20, pageSize: Int = 100,
        passInterval: Duration = .seconds(3600), logger: Logger
    ) {
        self.engine = engine
        self.store = store
        self.deviceCheck = deviceCheck
        self.pageSize = pageSize
        self.pageInterval = .milliseconds(Int64(1000 * pageSize / max(1, devicesPerSecond)))
        self.passInterval = passInterval
        self.logger = logger
    }

    public var progress: Progress { state.withLock { $0 } }

    public func run() async throws {
        // Shutdown cancels the wait (and a pass in progress: the next start begins again).
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let started = ContinuousClock.now
                try await self.pass()
                try await Task.sleep(until: started + self.passInterval)
            }
        }
    }

    /// One paced walk over every local device.
    public func pass() async throws {
        let started = Date()
        state.withLock { $0.running = true; $0.checked = 0; $0.toppedUp = 0; $0.fallbackRotated = 0; $0.failed = 0; $0.replaced = 0 }
        defer { state.withLock { $0.running = false } }
        var cursor: UserID?
        repeat {
            let page = ContinuousClock.now
            cursor = await checkPage(after: cursor)
            if cursor != nil { try await Task.sleep(until: page + pageInterval) }
        } while cursor != nil
        let progress = state.withLock { state in
            state.lastPassDevices = state.checked
            state.lastPassFinishedAt = Date()
            state.lastPassSeconds = Date().timeIntervalSince(started)
            return state
        }
        logger.info("one-time key pass done", metadata: [
            "devices": "\(progress.checked)", "topped_up": "\(progress.toppedUp)", "fallback_rotated": "\(progress.fallbackRotated)",
            "failed": "\(progress.failed)",
            "seconds": "\(Int(progress.lastPassSeconds ?? 0))",
        ])
    }

    /// Checks one page; returns where the next page starts (nil: the walk is done).
    public func checkPage(after cursor: UserID?) async -> UserID? {
        do {
            let page = try await store.localDevices(after: cursor, limit: pageSize)
            let replaced = await replaceLostDevices(page)
            do {
                let (toppedUp, rotated, failed) = try await engine.checkOneTimeKeys(page.filter { !replaced.contains($0) })
                state.withLock {
                    $0.checked += page.count; $0.toppedUp += toppedUp; $0.fallbackRotated += rotated; $0.failed += failed.count
                }
                for device in failed.prefix(3) {
                    logger.warning("one-time key count could not be read", metadata: ["user": "\(device.userID)", "device": "\(device.deviceID)"])
                }
            } catch {
                state.withLock { $0.checked += page.count; $0.failed += page.count }
                logger.warning("one-time key check failed", metadata: ["error": "\(error)"])
            }
            return page.count < pageSize ? nil : page.last?.userID
        } catch {
            logger.warning("one-time key check could not list devices", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Replaces the devices of `page` that the homeserver lost or serves with other keys.
    /// - Returns: The devices replaced (their counts need no reading: the new ones have fresh keys).
    func replaceLostDevices(_ page: [DeviceRef]) async -> Set<DeviceRef> {
        guard let deviceCheck, !page.isEmpty else { return [] }
        var replaced: Set<DeviceRef> = []
        do {
            let states = try await engine.checkLocalDevices(page, as: deviceCheck.requester)
            for (device, lost) in states.filter({ $0.value != .matches }).sorted(by: { $0.key.userID < $1.key.userID }) {
                do {
                    let new = try await engine.replaceDevice(
                        device, state: lost, preferred: deviceCheck.preferredDeviceID, displayName: deviceCheck.displayName(device.userID))
                    replaced.insert(device)
                    state.withLock { $0.replaced += 1 }
                    await deviceCheck.onReplaced(device, new, lost)
                } catch {
                    logger.error("could not replace a lost local device", metadata: ["user": "\(device.userID)", "device": "\(device.deviceID)", "error": "\(error)"])
                }
            }
        } catch {
            logger.warning("could not check local devices against the homeserver", metadata: ["error": "\(error)"])
        }
        return replaced
    }
}
