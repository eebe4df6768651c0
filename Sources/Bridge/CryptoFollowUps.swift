import Logging
import MatrixCrypto
import MatrixModels
import ServiceLifecycle

/// Work the crypto pipeline does after a transaction committed: key uploads, wedged-session
/// recoveries, answers to key requests, and the device lists of to-device senders whose payloads wait for them. A `Service`,
/// so it drains in the daemon's `ServiceGroup` and stops with it.
///
/// Failed work is retried with backoff (1 s doubling, five attempts); what still fails is logged and
/// comes back on its own: unpublished keys are offered again by the next top-up, a wedged session is
/// reported again by the peer's next message, and waiting payloads are swept again by
/// ``UndecryptableService``.
public final class CryptoFollowUps: Service, Sendable {
    public enum Work: Sendable {
        case upload(KeysUpload)
        case recover(WedgedSession)
        /// Answer (or refuse) a device's `m.room_key_request` for a local device's session.
        case answerKeyRequest(RoomKeyRequest)
        /// Withdraw our key requests for these sessions if their keys arrived.
        case settleKeyRequests(Set<String>)
        /// Query these senders' devices (as a local user) and act on their waiting payloads.
        case resolveSenders(Set<UserID>, requester: UserID)
        /// Download and import the MSC4268 history bundles whose invite has been seen.
        case importHistoryBundles
    }

    let engine: CryptoEngine
    /// Told of steps committed here that deliver events (bot activity, counters); nil: nobody.
    let onCommitted: (@Sendable (CryptoStep) async -> Void)?
    let logger: Logger
    private let stream: AsyncStream<Work>
    private let continuation: AsyncStream<Work>.Continuation

    public init(
        engine: CryptoEngine, onCommitted: (@Sendable (CryptoStep) async -> Void)? = nil,
        logger: Logger = Logger(label: "sealbridge.crypto.followups")
    ) {
        self.engine = engine
        self.onCommitted = onCommitted
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Work.self)
    }

    public func enqueue(_ work: Work) {
        continuation.yield(work)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await work in stream {
                await perform(work)
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// Performs one piece of work with retries; exposed for tests that drive the pipeline by hand.
    public func perform(_ work: Work) async {
        var delay = Duration.seconds(1)
        for attempt in 1...5 {
            do {
                switch work {
                case .upload(let upload): try await engine.upload(upload)
                case .recover(let session): try await engine.recover(session)
                case .answerKeyRequest(let request): try await engine.answer(request)
                case .settleKeyRequests(let sessions): try await engine.settleKeyRequests(sessions)
                case .resolveSenders(let senders, let requester):
                    let step = try await engine.resolvePendingSenders(senders, as: requester)
                    await onCommitted?(step)
                    if !step.changes.historyBundles.isEmpty { enqueue(.importHistoryBundles) }
                case .importHistoryBundles:
                    for step in try await engine.importHistoryBundles() { await onCommitted?(step) }
                }
                return
            } catch {
                logger.warning("crypto follow-up failed", metadata: ["work": "\(Self.describe(work))", "attempt": "\(attempt)", "error": "\(error)"])
                // Shutting down: what is left is retried from the store's state on the next start
                // (uploads from the account's unpublished keys, senders by the sweep), not waited for.
                if attempt == 5 || Task.isShuttingDownGracefully { return }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }

    static func describe(_ work: Work) -> String {
        switch work {
        case .upload(let upload): "keys upload for \(upload.userID)"
        case .recover(let session): "wedged session recovery \(session.localUserID) ↔ \(session.remoteUserID)"
        case .resolveSenders(let senders, _): "device lists of \(senders.count) to-device sender(s)"
        case .answerKeyRequest(let request): "key request of \(request.requester)"
        case .settleKeyRequests(let sessions): "withdrawing key requests for \(sessions.count) session(s)"
        case .importHistoryBundles: "importing history bundles"
        }
    }
}
