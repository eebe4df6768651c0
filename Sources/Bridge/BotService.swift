import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import ServiceLifecycle

/// The bot: joins rooms it is invited to, learns their state and members from the homeserver (never
/// from assumption), and answers admins' commands in the management room, encrypted where the room is.
///
/// Fed after each commit by the transaction handler; a `Service` so it drains in the `ServiceGroup`.
/// Work here is not yet durable: a crash between commit and reply loses the reply (the durable
/// outbox is the bridge API's part).
public final class BotService: Service, Sendable {
    let engine: CryptoEngine
    let homeserver: HomeserverClient
    let store: any CryptoStore
    let bot: UserID
    let commands: ManagementCommands
    let managementRoom: RoomID?
    let autoJoin: Bool
    let logger: Logger
    private let stream: AsyncStream<RoomActivity>
    private let continuation: AsyncStream<RoomActivity>.Continuation

    public init(
        engine: CryptoEngine, homeserver: HomeserverClient, store: any CryptoStore, bot: UserID, commands: ManagementCommands,
        managementRoom: RoomID?, autoJoin: Bool, logger: Logger = Logger(label: "sealbridge.bot")
    ) {
        self.engine = engine
        self.homeserver = homeserver
        self.store = store
        self.bot = bot
        self.commands = commands
        self.managementRoom = managementRoom
        self.autoJoin = autoJoin
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: RoomActivity.self)
    }

    public func enqueue(_ activities: [RoomActivity]) {
        for activity in activities { continuation.yield(activity) }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await activity in stream {
                do {
                    try await handle(activity)
                } catch {
                    logger.warning("bot could not act", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    func handle(_ activity: RoomActivity) async throws {
        switch activity {
        case .invited(let roomID, let userID, let inviter):
            guard userID == bot, autoJoin else { return }
            try await homeserver.joinRoom(roomID, as: bot)
            logger.info("joined a room", metadata: ["room_id": "\(roomID)", "inviter": "\(inviter)"])
            try await refreshRoom(roomID)
        case .message(let message):
            guard message.content["msgtype"]?.stringValue == "m.text", let body = message.content["body"]?.stringValue,
                try await isManagementRoom(message.roomID, sender: message.sender)
            else { return }
            guard let reply = await commands.handle(body, from: message.sender) else { return }
            try await send(reply, in: message.roomID, txnID: "reply-" + message.eventID.rawValue)
        }
    }

    /// Reads the room's encryption, history visibility and members from the homeserver into the
    /// machine, then queries the members' devices so their keys are known before they write.
    public func refreshRoom(_ roomID: RoomID) async throws {
        var encryption: RoomEncryption?
        var visibility = "shared"
        for event in try await homeserver.roomState(roomID, as: bot) where event["state_key"]?.stringValue == "" {
            switch event["type"]?.stringValue {
            case "m.room.encryption":
                if let algorithm = event["content"]?["algorithm"]?.stringValue {
                    encryption = RoomEncryption(
                        algorithm: algorithm, rotationPeriodMilliseconds: event["content"]?["rotation_period_ms"]?.integerValue,
                        rotationPeriodMessages: event["content"]?["rotation_period_msgs"]?.integerValue)
                }
            case "m.room.history_visibility":
                visibility = event["content"]?["history_visibility"]?.stringValue ?? visibility
            default: break
            }
        }
        encryption?.historyVisibility = visibility
        let members = try await homeserver.roomMembers(roomID, as: bot)
        try await engine.updateRoom(roomID, encryption: encryption, members: members)
        if encryption != nil {
            try await engine.refreshDevices(members.filter { $0.value == "join" || $0.value == "invite" }.map(\.key).sorted(), as: bot)
        }
    }

    /// The configured room, or a direct chat: the bot and the sender are its only members.
    func isManagementRoom(_ roomID: RoomID, sender: UserID) async throws -> Bool {
        if let managementRoom { return roomID == managementRoom }
        let present = Set(try await store.members(roomID: roomID).filter { $0.value == "join" || $0.value == "invite" }.map(\.key))
        return present == [bot, sender]
    }

    func send(_ reply: CommandReply, in roomID: RoomID, txnID: String) async throws {
        if try await store.room(roomID) != nil {
            _ = try await engine.send(roomID: roomID, sender: bot, type: "m.room.message", content: reply.content, txnID: txnID)
        } else {
            _ = try await homeserver.sendRoomEvent(
                roomID, eventType: "m.room.message", txnID: txnID, content: reply.content, as: HomeserverClient.Identity(userID: bot))
        }
    }
}
