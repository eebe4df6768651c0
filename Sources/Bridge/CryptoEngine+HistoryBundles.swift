import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Metrics

extension CryptoEngine {
    /// Imports the MSC4268 history bundles whose invite has been seen (docs/history-bundles.md).
    ///
    /// Under the lock, the machine picks the bundles due and refuses those from anyone but the
    /// inviter (committed at once); then each due bundle is downloaded from the media repository as
    /// its recipient, with no lock held and no database transaction open, and imported under the
    /// lock in one fenced commit with the events it decrypts. A download refused for good (4xx,
    /// over ``HistoryBundle/maxBytes``) releases the bundle; one that failed for a passing reason
    /// (no answer, 5xx after retries) leaves it for the next sweep, until it expires after a day.
    /// - Returns: The committed steps (deliveries, metrics), refusals first.
    @discardableResult
    public func importHistoryBundles(limit: Int = 20, maxBytes: Int = HistoryBundle.maxBytes) async throws -> [CryptoStep] {
        let (due, refused) = try await locked {
            let found = try await machine.dueHistoryBundles(limit: limit)
            try await committer.commit(found.step)
            return found
        }
        log(refused)
        var steps = [refused]
        // A fresh device list of each inviter first (as matrix-rust-sdk does), so their devices'
        // trust is known when the events decrypt; a server that does not answer holds nothing up.
        var queried = Set<UserID>()
        for bundle in due where queried.insert(bundle.sender).inserted {
            do {
                let response = try await withDeadline(.seconds(10)) { [transport] in try await transport.queryKeys([bundle.sender], as: bundle.recipient.userID) }
                try await commitKeysQuery(response, users: [bundle.sender])
            } catch {
                logger.warning("could not query the devices of a history bundle's sender", metadata: ["sender": "\(bundle.sender)", "error": "\(error)"])
            }
        }
        for bundle in due {
            let download: Result<[UInt8], HistoryBundleFailure>
            do {
                download = .success(try await transport.downloadMedia(bundle.file.url, as: bundle.recipient.userID, maxBytes: maxBytes))
            } catch is MediaTooLarge {
                download = .failure(.tooLarge)
            } catch is MediaUnavailable {
                download = .failure(.downloadFailed("no such media"))
            } catch let error as HomeserverError where (400..<500).contains(error.status) {
                download = .failure(.downloadFailed("HTTP \(error.status) \(error.errcode ?? "")"))
            } catch {
                logger.warning("could not download a history bundle; it is tried again later", metadata: [
                    "room_id": "\(bundle.roomID)", "sender": "\(bundle.sender)", "error": "\(error)",
                ])
                continue
            }
            let step = try await locked {
                let step = try await machine.importHistoryBundle(bundle, download: download)
                try await committer.commit(step)
                return step
            }
            log(step)
            steps.append(step)
            // Keys we had asked for that the bundle brought: the requests are withdrawn (after the commit).
            let sessions = Set(step.changes.inboundGroupSessions.map(\.sessionID))
            if !sessions.isEmpty {
                do {
                    try await settleKeyRequests(sessions)
                } catch {
                    logger.warning("could not withdraw key requests a history bundle answered", metadata: ["error": "\(error)"])
                }
            }
        }
        return steps
    }

    /// One log line per bundle imported or refused; never a key.
    func log(_ step: CryptoStep) {
        for outcome in step.historyBundles {
            var metadata: Logger.Metadata = [
                "room_id": "\(outcome.roomID)", "sender": "\(outcome.sender)", "recipient": "\(outcome.recipient)", "outcome": "\(outcome.label)",
            ]
            if let failure = outcome.failure {
                metadata["reason"] = "\(failure)"
                logger.warning("history bundle refused", metadata: metadata)
            } else {
                metadata["sessions"] = "\(outcome.imported)"
                metadata["skipped"] = "\(outcome.skipped.values.reduce(0, +))"
                logger.notice("history bundle imported", metadata: metadata)
            }
        }
    }
}

/// Counters of MSC4268 history bundles (docs/history-bundles.md): pointers received, bundles by
/// outcome, and bundled sessions by what became of them.
public enum HistoryBundleMetrics {
    public static func record(_ step: CryptoStep) {
        if !step.changes.historyBundles.isEmpty {
            Counter(label: "sealbridge_history_bundles_total", dimensions: [("outcome", "received")]).increment(by: step.changes.historyBundles.count)
        }
        for outcome in step.historyBundles {
            Counter(label: "sealbridge_history_bundles_total", dimensions: [("outcome", outcome.label)]).increment()
            if outcome.imported > 0 {
                Counter(label: "sealbridge_history_bundle_sessions_total", dimensions: [("outcome", "imported")]).increment(by: outcome.imported)
            }
            for (reason, count) in outcome.skipped where count > 0 {
                Counter(label: "sealbridge_history_bundle_sessions_total", dimensions: [("outcome", reason)]).increment(by: count)
            }
        }
    }
}
