import Foundation
import MatrixModels

/// An MSC4268 `m.room_key_bundle` (or unstable `io.element.msc4268.room_key_bundle`) a local device
/// received over Olm: where the inviter uploaded the encrypted bundle of a room's keys, and the key
/// that opens it. Kept (sealed) until the local user's invite from the same sender is seen, then
/// downloaded after the commit (docs/history-bundles.md).
public struct PendingHistoryBundle: Sendable, Hashable {
    /// Random hex: the row's key.
    public var id: String
    /// The local device the pointer was Olm-encrypted to.
    public var recipient: DeviceRef
    public var roomID: RoomID
    /// Who sent it, from the Olm-decrypted payload, and the verified device it came from.
    public var sender: UserID
    public var senderDeviceID: DeviceID
    public var senderKey: String
    public var senderEd25519: String
    public var file: EncryptedFile
    public var receivedAt: Date

    public init(
        id: String, recipient: DeviceRef, roomID: RoomID, sender: UserID, senderDeviceID: DeviceID, senderKey: String, senderEd25519: String,
        file: EncryptedFile, receivedAt: Date
    ) {
        self.id = id
        self.recipient = recipient
        self.roomID = roomID
        self.sender = sender
        self.senderDeviceID = senderDeviceID
        self.senderKey = senderKey
        self.senderEd25519 = senderEd25519
        self.file = file
        self.receivedAt = receivedAt
    }

    /// The to-device types of a bundle pointer: stable and MSC4268's unstable prefix.
    public static let eventTypes: Set<String> = ["m.room_key_bundle", "io.element.msc4268.room_key_bundle"]
}
