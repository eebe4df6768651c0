import Foundation
import MatrixModels

/// A local user's invite into a room, with who sent it: the only sender whose MSC4268 history
/// bundle for that room the user accepts (a bundle from anyone else could plant sessions under
/// other senders' names). Taken from the `m.room.member` invite event in a transaction.
public struct RoomInvite: Sendable, Hashable {
    public var roomID: RoomID
    public var userID: UserID
    public var inviter: UserID
    public var invitedAt: Date

    public init(roomID: RoomID, userID: UserID, inviter: UserID, invitedAt: Date) {
        self.roomID = roomID
        self.userID = userID
        self.inviter = inviter
        self.invitedAt = invitedAt
    }
}
