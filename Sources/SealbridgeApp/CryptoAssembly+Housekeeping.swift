import Bridge
import Foundation
import Postgres
import SealbridgeConfig
import Store

extension CryptoAssembly {
    /// Pruning of the crypto tables that only grow (`retention`), for the housekeeping service.
    static func housekeepingTasks(
        _ configuration: SealbridgeConfiguration, engine: CryptoEngine, store: PostgresCryptoStore, client: PostgresClient
    ) -> [HousekeepingTask] {
        let retention = configuration.retention
        var housekeepingTasks = [
            // Under the crypto lock: a step never works from an Olm session that is being deleted.
            HousekeepingTask(table: "sealbridge_olm_sessions") { batch in
                try await engine.lock.withLock {
                    try await store.pruneOlmSessions(keep: retention.olmSessionsPerKey, idleBefore: Date().addingTimeInterval(-86_400), batch: batch)
                }
            },
            // Not under the lock: a lookup sees the pruned entries or their floor, never neither (one statement).
            HousekeepingTask(table: "sealbridge_megolm_replay") { batch in
                try await store.pruneReplayLedger(seenBefore: Date().addingTimeInterval(-retention.replay), batch: batch)
            },
            HousekeepingTask(table: "sealbridge_withheld_sessions") { batch in
                try await store.pruneWithheldNotices(receivedBefore: Date().addingTimeInterval(-retention.withheld), batch: batch)
            },
            // Recovery records only throttle a wedged session's replacement (an hour).
            HousekeepingTask(table: "sealbridge_olm_recoveries") { batch in
                try await store.pruneOlmRecoveries(recoveredBefore: Date().addingTimeInterval(-7 * 86_400), batch: batch)
            },
            // Key requests whose events expired unanswered.
            HousekeepingTask(table: "sealbridge_key_requests") { batch in
                try await store.pruneKeyRequests(requestedBefore: Date().addingTimeInterval(-configuration.encryption.parkedRetention), batch: batch)
            },
            // Replaced outbound sessions, kept only so their recipients can ask for their keys again.
            HousekeepingTask(table: "sealbridge_retired_outbound_sessions") { batch in
                try await store.pruneRetiredOutboundSessions(retiredBefore: Date().addingTimeInterval(-retention.retiredSessions), batch: batch)
            },
        ]
        // The bridge API's send records (only written while it is on).
        if configuration.bridgeAPI.token != nil { housekeepingTasks.append(BridgeSendRetention(sends: PostgresBridgeSendLedger(client: client)).task) }
        return housekeepingTasks
    }
}
