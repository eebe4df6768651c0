import HomeserverClient
import MatrixCrypto
import MatrixModels

/// Reads a room's encryption, history visibility and members from the homeserver into the machine
/// (after a join, never from assumption), then queries the members' devices so their keys are known
/// before anyone writes.
public struct RoomSync: Sendable {
    let engine: CryptoEngine
    let homeserver: HomeserverClient

    public init(engine: CryptoEngine, homeserver: HomeserverClient) {
        self.engine = engine
        self.homeserver = homeserver
    }

    /// - Parameter user: A local member of the room, whose view is read.
    /// - Returns: Whether the room is encrypted.
    @discardableResult
    public func refresh(_ roomID: RoomID, as user: UserID) async throws -> Bool {
        var encryption: RoomEncryption?
        var visibility = "shared"
        for event in try await homeserver.roomState(roomID, as: user) where event["state_key"]?.stringValue == "" {
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
        let members = try await homeserver.roomMembers(roomID, as: user)
        try await engine.updateRoom(roomID, encryption: encryption, members: members)
        if encryption != nil {
            try await engine.refreshDevices(members.filter { $0.value == "join" || $0.value == "invite" }.map(\.key).sorted(), as: user)
        }
        return encryption != nil
    }
}
