import AppService
import Bridge
import BridgeAPI
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import Metrics
import Postgres
import Prometheus
import SealbridgeConfig
import ServiceLifecycle
import Store

/// Why the daemon could not start; the command line maps ``Code`` to an exit status.
public struct DaemonError: Error, CustomStringConvertible {
    public enum Code: Sendable {
        case databaseUnavailable, migration, configuration
        /// The homeserver holds a cross-signing identity for the bot that the database does not.
        case identity
        /// The homeserver did not answer (`sealbridge recovery-key`).
        case homeserverUnavailable
    }
    public var code: Code
    public var message: String
    public var description: String { message }
}

/// Starting and running Sealbridge: `sealbridge run` and `sealbridge migrate`.
public enum Daemon {
    /// Applies pending migrations and returns the versions applied.
    public static func migrate(configuration: SealbridgeConfiguration) async throws -> [Int] {
        let client = PostgresClient(configuration: PostgresConfiguration(connectionString: configuration.database.uri, poolSize: 1))
        do {
            let applied = try await Migrator.migrate(SealbridgeMigrations.all, on: client)
            await client.close()
            return applied
        } catch let error as PostgresError where error.code == .connectionFailed {
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: error.message)
        } catch {
            await client.close()
            throw DaemonError(code: .migration, message: "\(error)")
        }
    }

    /// Runs until SIGTERM or SIGINT: takes the instance lock (waiting as a standby while another
    /// instance holds it), migrates, then serves until shutdown, finishing in-flight transactions.
    ///
    /// - Parameter resetIdentity: Make a new bot cross-signing identity if the database lost it and no
    ///   recovery key restores it (`sealbridge run --reset-identity`); otherwise that case stops the daemon.
    public static func run(configuration: SealbridgeConfiguration, resetIdentity: Bool = false) async throws {
        LoggingSetup.bootstrap(configuration.logging)
        let logger = Logger(label: "sealbridge")
        let registry = PrometheusCollectorRegistry()
        if configuration.metrics.enabled {
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.valueHistogramBuckets[RecoveryMetrics.recoverySeconds] = RecoveryMetrics.recoveryBuckets
            factory.durationHistogramBuckets[TransactionPhase.label] = TransactionPhase.buckets
            MetricsSystem.bootstrap(factory)
        }
        logger.info("starting", metadata: ["version": "\(SealbridgeInfo.version)", "config": "\(configuration.summary)"])

        let client = PostgresClient(configuration: PostgresConfiguration(
            connectionString: configuration.database.uri, poolSize: configuration.database.poolSize,
            statementTimeout: configuration.database.statementTimeoutMilliseconds > 0
                ? .milliseconds(configuration.database.statementTimeoutMilliseconds) : nil))
        let lockKey = instanceLockKey(appserviceID: configuration.appservice.id)
        let lock: AdvisoryLock
        do {
            if let held = try await client.tryAdvisoryLock(key: lockKey) {
                lock = held
            } else {
                logger.notice("another Sealbridge instance holds the lock for this appservice; waiting as standby")
                lock = try await client.advisoryLock(key: lockKey)
                logger.notice("took over the instance lock")
            }
        } catch let error as PostgresError {
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: error.message)
        }
        do {
            guard try await client.hasStableSession(lock) else {
                await lock.release()
                await client.close()
                throw DaemonError(
                    code: .configuration,
                    message: "database.uri: statements of one connection reach different server sessions — a pooler in transaction mode (e.g. PgBouncer pool_mode=transaction) is in the way. It breaks the instance lock; connect to PostgreSQL directly or in session mode")
            }
        } catch let error as PostgresError {
            await lock.release()
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: error.message)
        }
        do {
            let applied = try await Migrator.migrate(SealbridgeMigrations.all, on: client)
            if !applied.isEmpty { logger.notice("applied database migrations", metadata: ["versions": "\(applied)"]) }
        } catch {
            await lock.release()
            await client.close()
            throw DaemonError(code: .migration, message: "\(error)")
        }
        let fence = InstanceFence()
        do {
            let epoch = try await fence.takeOver(client: client, holder: instanceName)
            logger.notice("owns the crypto state", metadata: ["epoch": "\(epoch)"])
        } catch {
            await lock.release()
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: "cannot take the fencing epoch: \(error)")
        }

        let systemd = SystemdNotifier()
        var services: [any Service] = [
            DatabaseService(client: client),
            InstanceLockService(
                client: client, key: lockKey, initial: lock, fence: fence, holder: instanceName, logger: logger),
        ]
        var handler: any TransactionHandler = TransactionLog()
        var serializeWith: AsyncLock?
        var bridgeAPI: BridgeAPIEndpoints?
        var cipher: StoreCipher?
        var quarantine: TransactionQuarantine?
        var selfChecks: SelfCheckService?
        let transactionRetention = TransactionRetention(client: client), retention = configuration.retention
        var housekeeping = [
            HousekeepingTask(table: "sealbridge_appservice_transactions") { batch in
                try await transactionRetention.pruneTransactions(committedBefore: Date().addingTimeInterval(-retention.transactions), batch: batch)
            },
            HousekeepingTask(table: "sealbridge_quarantine") { batch in
                try await transactionRetention.pruneResolvedQuarantine(resolvedBefore: Date().addingTimeInterval(-retention.resolvedQuarantine), batch: batch)
            },
        ]
        if configuration.encryption.enabled {
            let crypto: CryptoAssembly
            do {
                crypto = try CryptoAssembly(
                    configuration: configuration, client: client, fence: fence, resetIdentity: resetIdentity, logger: logger)
                try await PickleKeyRotation.checkKeyring(crypto.cipher, client: client, logger: logger)
            } catch {
                await lock.release()
                await client.close()
                throw error
            }
            handler = ProbeObservingHandler(crypto.handler, probes: crypto.probes)
            selfChecks = crypto.selfChecks
            if let checks = crypto.selfChecks { services.append(checks) }
            serializeWith = crypto.engine.lock
            bridgeAPI = crypto.bridgeAPI
            cipher = crypto.cipher
            quarantine = crypto.quarantine
            if let webhook = crypto.webhook { services.append(webhook) }
            services += [crypto.followUps, crypto.botDevice, crypto.keyCheck, crypto.bot, crypto.undecryptableService]
            if let backfill = crypto.crossSigningBackfill { services.append(backfill) }
            housekeeping += crypto.housekeepingTasks
        }
        let pipeline = TransactionPipeline(
            configuration: configuration, client: client, handler: handler, cipher: cipher, lock: serializeWith, quarantine: quarantine,
            fence: fence, logger: Logger(label: "sealbridge.appservice"))
        if let replay = pipeline.replay { services.append(replay) }
        services.append(HousekeepingService(
            tasks: housekeeping, interval: .seconds(Int64(retention.interval)), logger: Logger(label: "sealbridge.housekeeping")))
        services.append(SystemdWatchdogService(notifier: systemd, heartbeat: pipeline.heartbeat))
        // After any absence, Synapse backs off up to 512 s: a ping makes it retry its transactions at once.
        let serverReady = ServerReadySignal()
        services.append(HomeserverNudgeService(
            homeserver: HomeserverClient(
                baseURL: configuration.homeserver.url, asToken: configuration.appservice.asToken ?? "", logger: Logger(label: "sealbridge.homeserver")),
            appserviceID: configuration.appservice.id, heartbeat: pipeline.heartbeat, ready: serverReady, logger: Logger(label: "sealbridge.nudge")))
        let separateMetrics = configuration.metrics.enabled ? configuration.metrics.listen.flatMap(hostPort) : nil
        if let (host, port) = separateMetrics {
            services.append(buildMetricsApplication(host: host, port: port, registry: registry, token: configuration.metrics.token, logger: logger))
        }
        let separateBridgeAPI = configuration.bridgeAPI.listen.flatMap(hostPort)
        if let (host, port) = separateBridgeAPI, let bridgeAPI {
            services.append(buildBridgeAPIApplication(host: host, port: port, bridgeAPI: bridgeAPI, logger: logger))
        }
        services.append(buildAppServiceApplication(
            configuration: configuration, client: client, pipeline: pipeline, bridgeAPI: separateBridgeAPI == nil ? bridgeAPI : nil,
            metricsRegistry: configuration.metrics.enabled && separateMetrics == nil ? registry : nil, selfChecks: selfChecks, logger: logger,
            onServerRunning: {
                await serverReady.set()
                systemd.notify("READY=1\nSTATUS=serving the appservice API")
                logger.info("serving", metadata: ["address": "\(configuration.appservice.address):\(configuration.appservice.port)"])
            }))
        // A service that fails (the bot's identity refused, the fence lost) shuts the others down
        // gracefully, as SIGTERM does, instead of cancelling them: cancelling the HTTP server's task while
        // the homeserver's connection has been accepted but not yet served traps in NIO ("Deinited
        // NIOAsyncWriter without calling finish()", apple/swift-nio#3481), which turned the clean exit 78
        // of a refused start into a crash now and then. A shutdown that hangs is cancelled after 25 s
        // (inside the unit's TimeoutStopSec=30).
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(25)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        logger.info("stopped")
    }

    /// Who holds the epoch, for operators reading `sealbridge_instance`: host and process id.
    static var instanceName: String {
        "\(ProcessInfo.processInfo.hostName) pid \(ProcessInfo.processInfo.processIdentifier)"
    }

    /// A stable advisory-lock key per appservice id, so two appservices may share one database server.
    static func instanceLockKey(appserviceID: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in "sealbridge-instance:\(appserviceID)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return Int64(bitPattern: hash)
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        return (String(text[..<colon]), port)
    }
}

/// Build facts reported in logs and by `status`.
public enum SealbridgeInfo {
    public static let version = "0.1.0-dev"
}
