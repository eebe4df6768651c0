import AppService
import Bridge
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Store

extension CryptoAssembly {
    /// What admins can say in the management room: status, puppets, rotation, identities, undecryptable
    /// events, trust, the quarantine.
    static func managementCommands(
        admins: Set<UserID>, status: DaemonStatus, engine: CryptoEngine, machine: CryptoMachine, store: PostgresCryptoStore,
        homeserver: HomeserverClient, bot: UserID, backfill: CrossSigningBackfillService?, quarantine: TransactionQuarantine,
        handler: CryptoTransactionHandler, probes: ToDeviceProbes, logger: Logger
    ) -> ManagementCommands {
        ManagementCommands(
            admins: admins,
            commands: [
                ManagementCommand(name: "status", help: "version, uptime, homeserver and database, traffic, devices, rooms, self-checks") { _, _ in
                    CommandReply.table(title: "Sealbridge status", rows: await status.rows())
                },
                PuppetDirectory(store: store, homeserver: homeserver, bot: bot).command,
                ManagementCommand(name: "rotate", help: "rotate ROOM: the bot's next message there starts a new Megolm session") { arguments, _ in
                    guard let text = arguments.first, let room = try? RoomID(text) else { return CommandReply(body: "usage: rotate !room:server") }
                    do {
                        try await engine.rotate(roomID: room, sender: bot)
                        return CommandReply(body: "The next message in \(room) starts a new session.")
                    } catch {
                        return CommandReply(body: "Could not rotate: \(error)")
                    }
                },
                IdentityStatus(store: store, bot: bot, backfill: backfill).command,
            ] + UndecryptableCommand(machine: machine, requestKey: { room, session in
                try await engine.requestRoomKey(roomID: room, sessionID: session)
            }).commands + TrustCommands(engine: engine, requester: bot).commands + [
                QuarantineCommand(quarantine: quarantine, retry: { id in
                    try await engine.lock.withLock {
                        try await quarantine.retry(id: id, handler: ProbeObservingHandler(handler, probes: probes), logger: logger)
                    }
                }).command,
            ])
    }
}
