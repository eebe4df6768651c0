import Logging
import MatrixModels
import Postgres

/// Takes the self-check probes (``ToDeviceProbes/eventType``) out of each transaction before the
/// inner handler (the crypto pipeline) sees it, and tells ``ToDeviceProbes`` what arrived once the
/// transaction committed. A probe is never crypto input, never a delivery, never a command.
public struct ProbeObservingHandler: TransactionHandler {
    let inner: any TransactionHandler
    let probes: ToDeviceProbes

    public init(_ inner: any TransactionHandler, probes: ToDeviceProbes) {
        self.inner = inner
        self.probes = probes
    }

    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws -> AfterCommit {
        var rest = transaction
        let (found, others) = ToDeviceProbes.partition(transaction.toDevice)
        rest.toDevice = others
        let after = try await inner.handle(rest, txnID: txnID, connection: connection, logger: logger)
        let probes = probes, seen = rest
        return after.then(AfterCommit { probes.observe(seen, probes: found) })
    }

    /// Passes the claim on, so the inner handler can start its step before the claim is answered.
    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, claimed: @escaping @Sendable () async throws -> Bool,
        logger: Logger
    ) async throws -> AfterCommit? {
        var rest = transaction
        let (found, others) = ToDeviceProbes.partition(transaction.toDevice)
        rest.toDevice = others
        guard let after = try await inner.handle(rest, txnID: txnID, connection: connection, claimed: claimed, logger: logger) else { return nil }
        let probes = probes, seen = rest
        return after.then(AfterCommit { probes.observe(seen, probes: found) })
    }
}
