import AppService
import Foundation
import Bridge
import BridgeAPI
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import SealbridgeConfig
import ServiceLifecycle
import Store

/// The crypto pipeline as the daemon runs it: machine, PostgreSQL store, homeserver client, the
/// transaction handler, and the services that do work after commits.
struct CryptoAssembly {
    let engine: CryptoEngine
    let cipher: StoreCipher
    let handler: CryptoTransactionHandler
    let followUps: CryptoFollowUps
    let undecryptableService: UndecryptableService
    let botDevice: BotDeviceService
    let keyCheck: OneTimeKeyCheckService
    let bot: BotService
    /// Sets aside transactions that fail repeatedly; its entries are listed and retried by admins.
    let quarantine: TransactionQuarantine
    /// The bridge API's routes; nil when `bridge_api.token` is not set.
    let bridgeAPI: BridgeAPIEndpoints?
    /// Pushes deliveries to `bridge_api.webhook.url`; nil when none is set (long-poll instead).
    let webhook: WebhookDeliveryService?
    /// Publishes identities for local users that lack one; nil with cross-signing off.
    let crossSigningBackfill: CrossSigningBackfillService?
    /// Pruning of crypto tables that only grow (`retention`), for the housekeeping service.
    let housekeepingTasks: [HousekeepingTask]
    /// The self-checks' probes, which the transaction path reports (``ProbeObservingHandler``).
    let probes: ToDeviceProbes
    /// The periodic self-checks; nil when `self_checks.enabled` is false.
    let selfChecks: SelfCheckService?

    /// - Throws: ``DaemonError`` with `configuration` when the pickle key is unusable.
    /// - Parameters:
    ///   - fence: Every write of crypto state is fenced by its epoch, and crypto steps refuse while
    ///     this instance does not own the state.
    ///   - resetIdentity: Replace a cross-signing identity of the bot that the homeserver holds and the
    ///     database does not (`sealbridge run --reset-identity`); otherwise the daemon stops on one.
    init(
        configuration: SealbridgeConfiguration, client: PostgresClient, fence: InstanceFence? = nil, resetIdentity: Bool = false,
        logger: Logger
    ) throws {
        do {
            cipher = try StoreCipher(secret: configuration.encryption.pickleKey ?? "", previous: configuration.encryption.previousPickleKeys)
        } catch {
            throw DaemonError(code: .configuration, message: "encryption.pickle_key: \(error.message)")
        }
        let recoveryKey = try RecoveryKeySetup.configuredKey(configuration)
        var settings = CryptoSettings(
            defaultRotationPeriod: Double(configuration.encryption.rotationPeriodMilliseconds) / 1000,
            defaultRotationMessages: Int64(configuration.encryption.rotationMessages))
        settings.sharingPolicy = TrustPolicy(rawValue: configuration.encryption.sharingPolicy.rawValue) ?? .all
        settings.acceptFrom = TrustPolicy(rawValue: configuration.encryption.acceptFrom.rawValue) ?? .all
        settings.trustAnchor = try UserID(configuration.botUserID)
        let store = PostgresCryptoStore(client: client, cipher: cipher, fence: fence)
        let machine = CryptoMachine(store: store, cipher: cipher, settings: settings)
        let homeserver = HomeserverClient(
            baseURL: configuration.homeserver.url, asToken: configuration.appservice.asToken ?? "", logger: Logger(label: "sealbridge.homeserver"))
        let botUser = try UserID(configuration.botUserID)
        let users = LocalUsers(bot: botUser, puppetNamespaceRegex: configuration.puppetNamespaceRegex)
        // Puppets' identities live only here: one the homeserver holds and we lost goes with their old
        // devices. The bot's is the one users see; it is replaced only when the operator says so.
        var identityPolicy: (@Sendable (UserID) -> ForeignIdentityPolicy)?
        if configuration.encryption.crossSigning.enabled {
            identityPolicy = { @Sendable user in user == botUser && !resetIdentity ? ForeignIdentityPolicy.refuse : .replace }
        }
        // The bridge API's outbox: written by the transaction handler, read by the consumers and `status`.
        let outbox = configuration.bridgeAPI.token == nil ? nil : Outbox(client: client, cipher: cipher)
        let engine = CryptoEngine(
            machine: machine, store: store, transport: homeserver,
            committer: PostgresStepCommitter(client: client, store: store, outbox: outbox.map { ($0, users) }),
            fence: fence, crossSigning: identityPolicy, logger: Logger(label: "sealbridge.crypto"))
        self.engine = engine
        let undecryptable = UndecryptableLog()
        let keyGauge = OneTimeKeyGauge()
        let inbox = BotInbox()

        // Steps committed outside transactions (late keys, surfaced events) reach the bot like a transaction's.
        let stepReport = CryptoStepReport(), stepLogger = Logger(label: "sealbridge.crypto")
        let onCommitted: @Sendable (CryptoStep) async -> Void = { step in
            stepReport.record(step, logger: stepLogger)
            let failures = step.roomEvents.filter { if case .failure = $0.result { true } else { false } }.count
            if failures > 0 { await undecryptable.record(failures) }
            inbox.enqueue(RoomActivity.collect(events: [], step: step, isLocal: { users.isLocal($0) }))
        }
        followUps = CryptoFollowUps(engine: engine, onCommitted: onCommitted)
        undecryptableService = UndecryptableService(
            engine: engine, store: store,
            settings: {
                var settings = UndecryptableService.Settings(
                    surfaceAfter: configuration.encryption.undecryptableAfter, parkedRetention: configuration.encryption.parkedRetention)
                settings.keyRequestAfter = configuration.encryption.keyRequestAfter
                return settings
            }(),
            onCommitted: onCommitted, logger: Logger(label: "sealbridge.crypto.undecryptable"))
        let handler = CryptoTransactionHandler(
            engine: engine, store: store, followUps: followUps, undecryptable: undecryptable, isLocal: { users.isLocal($0) },
            outbox: outbox.map { ($0, users) }, keyGauge: keyGauge, activity: { inbox.enqueue($0) })
        self.handler = handler

        let actions = BridgeActions(
            engine: engine, homeserver: homeserver, store: store, sends: PostgresBridgeSendLedger(client: client), users: users,
            logger: Logger(label: "sealbridge.bridge"))
        let admins = Set(configuration.management.admins.compactMap { try? UserID($0) })
        let managementRoom = configuration.management.room.flatMap { try? RoomID($0) }
        let notifier = AdminNotifier(actions: actions, store: store, admins: admins, managementRoom: managementRoom, logger: logger)
        let quarantine = TransactionQuarantine(
            client: client, sealing: CipherSealing(cipher: cipher), threshold: configuration.appservice.poisonAttempts,
            onQuarantine: { entry in
                await notifier.notify(
                    "A transaction from the homeserver (txn \(entry.txnID)) failed \(entry.attempts) times and was quarantined so that the rest keeps flowing: \(entry.error)\nSend \"quarantine\" to list, \"quarantine retry \(entry.id)\" to run it again after fixing the cause.",
                    key: "quarantine-\(entry.id)")
            })
        self.quarantine = quarantine
        let backfill = identityPolicy.map { policy in
            CrossSigningBackfillService(
                engine: engine, store: store, perSecond: configuration.encryption.crossSigning.backfillPerSecond, skip: botUser,
                policy: policy, logger: Logger(label: "sealbridge.crypto.cross-signing"))
        }
        crossSigningBackfill = backfill
        housekeepingTasks = Self.housekeepingTasks(configuration, engine: engine, store: store, client: client)
        let botDisplayName = configuration.appservice.botDisplayName
        let keyCheck = OneTimeKeyCheckService(
            engine: engine, store: store,
            deviceCheck: OneTimeKeyCheckService.DeviceCheck(
                requester: botUser, preferredDeviceID: BridgeActions.deviceID,
                displayName: { $0 == botUser ? botDisplayName : "Sealbridge" },
                onReplaced: { old, new, state in
                    await notifier.notify(
                        "The homeserver \(state == .missing ? "no longer has" : "serves other keys for") the device \(old.deviceID) of \(old.userID); Sealbridge replaced it with \(new). Peers will share keys with the new device; messages sent to the old one meanwhile cannot be decrypted.",
                        key: "device-replaced-\(old.userID.rawValue)-\(old.deviceID.rawValue)")
                }),
            logger: Logger(label: "sealbridge.crypto.keys"))
        self.keyCheck = keyCheck
        let probes = ToDeviceProbes(bot: botUser)
        self.probes = probes
        let selfChecks = configuration.selfChecks.enabled
            ? SelfCheckService(
                runner: Self.selfCheckRunner(configuration, probes: probes, engine: engine, store: store, homeserver: homeserver, bot: botUser),
                interval: .seconds(Int64(configuration.selfChecks.interval)), isActive: { fence?.owns != false },
                logger: Logger(label: "sealbridge.self-check"))
            : nil
        self.selfChecks = selfChecks
        let status = DaemonStatus(
            client: client, homeserver: homeserver, startedAt: Date(), undecryptable: undecryptable, keyGauge: keyGauge,
            outbox: outbox, identities: IdentityStatus(store: store, bot: botUser, backfill: backfill), keyCheck: keyCheck, bot: botUser,
            selfChecks: selfChecks)
        let commands = Self.managementCommands(
            admins: admins, status: status, engine: engine, machine: machine, store: store, homeserver: homeserver, bot: botUser,
            backfill: backfill, quarantine: quarantine, handler: handler, probes: probes, logger: logger)
        if let token = configuration.bridgeAPI.token, let outbox {
            bridgeAPI = BridgeAPIEndpoints(token: token, actions: actions, outbox: outbox, longPoll: configuration.bridgeAPI.webhookURL == nil)
        } else {
            bridgeAPI = nil
        }
        if let outbox, let url = configuration.bridgeAPI.webhookURL, let secret = configuration.bridgeAPI.webhookSecret {
            webhook = WebhookDeliveryService(outbox: outbox, url: url, secret: secret, logger: Logger(label: "sealbridge.webhook"))
        } else {
            webhook = nil
        }
        bot = BotService(
            engine: engine, homeserver: homeserver, store: store, actions: actions, commands: commands, managementRoom: managementRoom,
            autoJoin: configuration.management.autoAcceptInvites, allowedInviterServers: Set(configuration.bridge.allowedInviterServers),
            inbox: inbox, logger: Logger(label: "sealbridge.bot"))
        botDevice = BotDeviceService(
            engine: engine, userID: botUser, deviceID: BridgeActions.deviceID,
            displayName: configuration.appservice.botDisplayName, identityPolicy: identityPolicy?(botUser), homeserver: homeserver,
            recoveryKey: recoveryKey, resetIdentity: resetIdentity, logger: logger)
    }
}
