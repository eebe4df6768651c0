import MatrixCrypto
import Postgres
import Store

/// Commits a crypto step that happened outside an appservice transaction (to-device payloads acted
/// on once their sender's devices were fetched, parked events surfaced as undecryptable): its changes
/// and the deliveries it makes, together or not at all.
public protocol StepCommitter: Sendable {
    func commit(_ step: CryptoStep) async throws
}

/// Saves the changes to a store; deliveries have nowhere to go (tests, tools).
public struct StoreStepCommitter: StepCommitter {
    let store: any CryptoStore

    public init(store: any CryptoStore) {
        self.store = store
    }

    public func commit(_ step: CryptoStep) async throws {
        try await store.save(step.changes)
    }
}

/// The daemon's: one database transaction with the crypto changes and, when the bridge API is on,
/// the deliveries queued in the outbox.
public struct PostgresStepCommitter: StepCommitter {
    let client: PostgresClient
    let store: PostgresCryptoStore
    let outbox: (Outbox, LocalUsers)?

    public init(client: PostgresClient, store: PostgresCryptoStore, outbox: (Outbox, LocalUsers)?) {
        self.client = client
        self.store = store
        self.outbox = outbox
    }

    public func commit(_ step: CryptoStep) async throws {
        guard !step.changes.isEmpty || !step.roomEvents.isEmpty || !step.trustUpdates.isEmpty else { return }
        try await client.withTransaction { connection in
            try await store.save(step.changes, on: connection)
            if let (outbox, users) = outbox {
                try await outbox.append(Delivery.collect(events: [], step: step, users: users), on: connection)
            }
        }
        if let outbox { await outbox.0.signal.notify() }
    }
}
