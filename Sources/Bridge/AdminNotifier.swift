import Logging
import MatrixCrypto
import MatrixModels

/// Tells the admins something they must act on (a quarantined transaction): in the configured
/// management room, or else in each admin's direct chat with the bot (a room whose only present
/// members are the bot and that admin). Encrypted where the room is, like every bot message.
public struct AdminNotifier: Sendable {
    let actions: BridgeActions
    let store: any CryptoStore
    let admins: Set<UserID>
    let managementRoom: RoomID?
    let logger: Logger

    public init(actions: BridgeActions, store: any CryptoStore, admins: Set<UserID>, managementRoom: RoomID?, logger: Logger) {
        self.actions = actions
        self.store = store
        self.admins = admins
        self.managementRoom = managementRoom
        self.logger = logger
    }

    /// Sends `text` as an `m.notice`; `key` makes a repeated notice for the same thing idempotent.
    public func notify(_ text: String, key: String) async {
        do {
            for room in try await rooms() {
                _ = try await actions.send(
                    roomID: room, type: "m.room.message", txnID: "notice-\(key)-\(room.rawValue)", content: CommandReply(body: text).content,
                    as: actions.users.bot)
            }
        } catch {
            logger.warning("could not notify the admins", metadata: ["error": "\(error)"])
        }
    }

    func rooms() async throws -> [RoomID] {
        if let managementRoom { return [managementRoom] }
        let bot = actions.users.bot
        var found: [RoomID] = []
        for room in try await store.presentRooms(userID: bot) {
            let present = Set(try await store.members(roomID: room).filter { $0.value == "join" || $0.value == "invite" }.map(\.key))
            if present.count == 2, present.contains(bot), !present.isDisjoint(with: admins) { found.append(room) }
        }
        return found
    }
}
