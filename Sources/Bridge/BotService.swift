import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import ServiceLifecycle

/// The bot: joins rooms it or a puppet is invited to (``BridgeAPI`` joins on request), learns their state and members from the homeserver (never
/// from assumption), and answers admins' commands in the management room, encrypted where the room is.
///
/// Fed after each commit by the transaction handler; a `Service` so it drains in the `ServiceGroup`.
/// Work here is not yet durable: a crash between commit and reply loses the reply (the durable
/// outbox is the bridge API's part).
public final class BotService: Service, Sendable {
    let engine: CryptoEngine
    let homeserver: HomeserverClient
    let store: any CryptoStore
    let actions: BridgeActions
    var bot: UserID { actions.users.bot }
    let commands: ManagementCommands
    let managementRoom: RoomID?
    let autoJoin: Bool
    /// Puppets join only when invited by a user of one of these servers (`bridge.allowed_inviter_servers`);
    /// nil: from anywhere.
    let allowedInviterServers: Set<String>?
    let logger: Logger
    let inbox: BotInbox

    public init(
        engine: CryptoEngine, homeserver: HomeserverClient, store: any CryptoStore, actions: BridgeActions, commands: ManagementCommands,
        managementRoom: RoomID?, autoJoin: Bool, allowedInviterServers: Set<String>? = nil, inbox: BotInbox = BotInbox(),
        logger: Logger = Logger(label: "sealbridge.bot")
    ) {
        self.allowedInviterServers = allowedInviterServers
        self.engine = engine
        self.homeserver = homeserver
        self.store = store
        self.actions = actions
        self.commands = commands
        self.managementRoom = managementRoom
        self.autoJoin = autoJoin
        self.logger = logger
        self.inbox = inbox
    }

    public func enqueue(_ activities: [RoomActivity]) {
        inbox.enqueue(activities)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await activity in inbox.stream {
                do {
                    try await handle(activity)
                } catch {
                    logger.warning("bot could not act", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            self.inbox.finish()
        }
    }

    func handle(_ activity: RoomActivity) async throws {
        switch activity {
        case .invited(let roomID, let userID, let inviter):
            guard autoJoin, actions.users.isLocal(userID) else { return }
            // A puppet is the bridge's: it goes where users of the bridged homeserver take it, not
            // wherever any federated user invites it (rooms it joins cost keys, devices and traffic).
            if actions.users.isPuppet(userID), let allowed = allowedInviterServers, !allowed.contains(inviter.serverName.rawValue) {
                logger.notice("ignored an invite for a puppet from a server not in bridge.allowed_inviter_servers", metadata: [
                    "room_id": "\(roomID)", "user": "\(userID)", "inviter": "\(inviter)",
                ])
                return
            }
            try await actions.join(roomID, as: userID)
            logger.info("joined a room", metadata: ["room_id": "\(roomID)", "user": "\(userID)", "inviter": "\(inviter)"])
        case .message(let message):
            guard message.content["msgtype"]?.stringValue == "m.text", let body = message.content["body"]?.stringValue,
                try await isManagementRoom(message.roomID, sender: message.sender)
            else { return }
            guard let reply = await commands.handle(body, from: message.sender) else { return }
            try await send(reply, in: message.roomID, txnID: "reply-" + message.eventID.rawValue)
        }
    }

    /// The configured room, or a direct chat: the bot and the sender are its only members.
    func isManagementRoom(_ roomID: RoomID, sender: UserID) async throws -> Bool {
        if let managementRoom { return roomID == managementRoom }
        let present = Set(try await store.members(roomID: roomID).filter { $0.value == "join" || $0.value == "invite" }.map(\.key))
        return present == [bot, sender]
    }

    /// Sends through ``BridgeActions/send(roomID:type:txnID:content:as:)``: encrypted where the room is
    /// (failing closed), and a repeated reply to the same event is not sent twice.
    func send(_ reply: CommandReply, in roomID: RoomID, txnID: String) async throws {
        _ = try await actions.send(roomID: roomID, type: "m.room.message", txnID: txnID, content: reply.content, as: bot)
    }
}

/// What the bot is handed after commits (invites, messages), queued until it gets to them; made
/// before the bot so that the pipeline that feeds it need not know it.
public final class BotInbox: Sendable {
    let stream: AsyncStream<RoomActivity>
    private let continuation: AsyncStream<RoomActivity>.Continuation

    public init() {
        (stream, continuation) = AsyncStream.makeStream(of: RoomActivity.self)
    }

    public func enqueue(_ activities: [RoomActivity]) {
        for activity in activities { continuation.yield(activity) }
    }

    func finish() { continuation.finish() }
}
