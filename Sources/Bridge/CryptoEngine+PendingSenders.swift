import Foundation
import Logging
import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// Fetches the device lists of to-device senders whose payloads wait (after the commit that
    /// parked them; never inside an appservice transaction), commits them, then acts on the waiting
    /// payloads and decrypts the events their room keys unlock, committing those with their deliveries.
    ///
    /// Each user is asked at most once per ``SenderQueryThrottle/interval``, and the query gives up
    /// after `timeout`: a federated user whose server does not answer cannot hold anything up. Payloads
    /// of users not asked (throttled) or not answered keep waiting for the next attempt.
    /// - Returns: The step that acted on the payloads (already committed), for the caller's follow-ups.
    @discardableResult
    public func resolvePendingSenders(_ senders: Set<UserID>, as requester: UserID, timeout: Duration = .seconds(10)) async throws -> CryptoStep {
        let due = await senderQueries.take(senders)
        if !due.isEmpty {
            let users = due.sorted()
            do {
                let response = try await withDeadline(timeout) { [transport] in try await transport.queryKeys(users, as: requester) }
                try await commitKeysQuery(response, users: users)
            } catch {
                logger.warning("could not query the devices of to-device senders; their messages keep waiting", metadata: [
                    "users": "\(users.count)", "error": "\(error)",
                ])
            }
        }
        return try await locked {
            let step = try await machine.processPendingToDevice(senders: senders)
            try await committer.commit(step)
            return step
        }
    }

    /// Delivers parked events that waited longer than `wait` as undecryptable, with their reason
    /// (a later key delivers them again, `late`).
    /// - Returns: The committed step.
    @discardableResult
    public func surfaceUndecryptable(olderThan wait: TimeInterval, limit: Int = 200, now: Date = Date()) async throws -> CryptoStep {
        try await locked {
            let step = try await machine.surfaceParkedEvents(parkedBefore: now.addingTimeInterval(-wait), limit: limit)
            try await committer.commit(step)
            return step
        }
    }
}

/// Who was asked for their device list lately, so a sender whose keys stay unknown is not queried on
/// every message (a federated server that does not answer would otherwise be hammered).
actor SenderQueryThrottle {
    let interval: TimeInterval
    private var asked: [UserID: Date] = [:]

    init(interval: TimeInterval = 30) {
        self.interval = interval
    }

    /// The users of `users` not asked within the interval, now marked as asked.
    func take(_ users: Set<UserID>, now: Date = Date()) -> Set<UserID> {
        if asked.count > 10_000 { asked = asked.filter { now.timeIntervalSince($0.value) < interval } }
        let due = users.filter { asked[$0].map { now.timeIntervalSince($0) >= interval } ?? true }
        for user in due { asked[user] = now }
        return due
    }
}

/// A call that did not finish within its deadline (it was cancelled).
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public var deadline: Duration
    public var description: String { "no answer within \(deadline)" }
}

/// Runs `body`, cancelling it and throwing ``DeadlineExceeded`` if it takes longer than `timeout`.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded(deadline: timeout) }
        return value
    }
}
