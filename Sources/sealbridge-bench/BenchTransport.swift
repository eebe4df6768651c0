import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Synchronization

/// A load-generating homeserver stand-in: answers `/keys/query` and `/keys/claim` for synthetic remote
/// devices and swallows sends. Only for producing load; correctness is tested against real parts.
final class BenchTransport: CryptoTransport {
    struct RemoteDevice {
        let keys: JSONValue
        var oneTimeKeys: [(String, JSONValue)]
    }

    private let devices: Mutex<[UserID: [DeviceID: RemoteDevice]]>
    let toDeviceMessages = Atomic<Int>(0)
    let roomEvents = Atomic<Int>(0)
    let uploads = Atomic<Int>(0)

    init(remoteDevices: [UserID: [DeviceID: RemoteDevice]] = [:]) {
        devices = Mutex(remoteDevices)
    }

    /// `count` remote devices (one per user `@remote_N:bench`), each with a signed identity and one signed one-time key.
    static func makeRemoteDevices(count: Int) throws -> [UserID: [DeviceID: RemoteDevice]] {
        var result: [UserID: [DeviceID: RemoteDevice]] = [:]
        for index in 0..<count {
            let user = try UserID("@remote_\(index):bench"), device = try DeviceID("R\(index)")
            let account = try Account.create()
            try account.generateOneTimeKeys(count: 1)
            let keys = try KeysUpload.signedDeviceKeys(of: account, userID: user, deviceID: device)
            let otk = account.unpublishedOneTimeKeys[0]
            let signed = try SignedJSON.sign(["key": .string(otk.publicKey)], userID: user, keyID: "ed25519:\(device.rawValue)", with: account)
            result[user] = [device: RemoteDevice(keys: keys, oneTimeKeys: [("signed_curve25519:\(otk.keyID)", signed)])]
        }
        return result
    }

    func registerUser(_ userID: UserID) async throws -> Bool { true }
    func createDevice(_ deviceID: DeviceID, for userID: UserID, displayName: String) async throws {}

    /// Local users have no devices before they are provisioned here (each bench database starts empty).
    func listDevices(of userID: UserID) async throws -> [DeviceID] { [] }

    func deleteDevice(_ deviceID: DeviceID, of userID: UserID) async throws {}

    /// Accepts cross-signing keys and signatures (counted as uploads); nothing reads them back.
    func uploadSigningKeys(_ body: JSONValue, as userID: UserID) async throws { uploads.add(1, ordering: .relaxed) }

    func uploadSignatures(_ body: JSONValue, as userID: UserID) async throws -> [String: JSONValue] {
        uploads.add(1, ordering: .relaxed)
        return [:]
    }

    /// Stores uploaded device keys and one-time keys, like a homeserver, so local devices can be queried and claimed.
    func uploadKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> [String: Int] {
        uploads.add(1, ordering: .relaxed)
        return devices.withLock { known in
            var entry = known[userID]?[device] ?? RemoteDevice(keys: .null, oneTimeKeys: [])
            if let keys = body["device_keys"] { entry = RemoteDevice(keys: keys, oneTimeKeys: entry.oneTimeKeys) }
            for (id, key) in body["one_time_keys"]?.objectValue ?? [:] { entry.oneTimeKeys.append((id, key)) }
            known[userID, default: [:]][device] = entry
            return ["signed_curve25519": entry.oneTimeKeys.count]
        }
    }

    func queryKeys(_ users: [UserID], as requester: UserID) async throws -> JSONValue {
        // Only the asked users' entries leave the lock: holding a copy of the whole map while uploads
        // mutate it would make each upload copy every device (O(puppets) per request).
        let known = devices.withLock { all in Dictionary(users.map { ($0, all[$0] ?? [:]) }, uniquingKeysWith: { first, _ in first }) }
        var answer: [String: JSONValue] = [:]
        for user in users {
            var list: [String: JSONValue] = [:]
            for (device, entry) in known[user] ?? [:] where entry.keys != .null { list[device.rawValue] = entry.keys }
            answer[user.rawValue] = .object(list)
        }
        return ["device_keys": .object(answer)]
    }

    func claimKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> JSONValue {
        devices.withLock { known in
            var answer: [String: JSONValue] = [:]
            for (user, wanted) in body["one_time_keys"]?.objectValue ?? [:] {
                guard let userID = try? UserID(user) else { continue }
                var byDevice: [String: JSONValue] = [:]
                for (device, _) in wanted.objectValue ?? [:] {
                    guard let deviceID = try? DeviceID(device), var entry = known[userID]?[deviceID], !entry.oneTimeKeys.isEmpty else { continue }
                    let (id, key) = entry.oneTimeKeys.removeFirst()
                    known[userID]?[deviceID] = entry
                    byDevice[device] = .object([id: key])
                }
                answer[user] = .object(byDevice)
            }
            return ["one_time_keys": .object(answer)]
        }
    }

    func sendToDevice(_ request: ToDeviceRequest, as userID: UserID, device: DeviceID) async throws {
        // Serialize as the real client would, so the cost of building the body is counted.
        _ = request.body.serialized()
        toDeviceMessages.add(request.deviceCount, ordering: .relaxed)
    }

    func sendRoomEvent(_ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as userID: UserID, device: DeviceID) async throws -> EventID {
        _ = content.serialized()
        let n = roomEvents.add(1, ordering: .relaxed).newValue
        return try EventID("$bench\(n)")
    }
}
