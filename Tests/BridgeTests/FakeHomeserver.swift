import Bridge
import HomeserverClient
import Foundation
import MatrixCrypto
import MatrixModels

/// An in-memory homeserver for crypto tests: stores device and one-time keys, routes to-device
/// messages and room events between several machines, and reports device-list changes, the way
/// Synapse does for an appservice (one transaction per drain).
actor FakeHomeserver {
    struct Device {
        var keys: JSONValue
        var oneTimeKeys: [(String, JSONValue)] = []
        var fallback: (String, JSONValue)?
    }

    private(set) var devices: [UserID: [DeviceID: Device]] = [:]
    private var inbox: [UserID: [DeviceID: [ToDeviceEvent]]] = [:]
    private(set) var timeline: [JSONValue] = []
    private var changedUsers: [String: Set<UserID>] = [:]
    private var eventCounter = 0
    /// Every to-device message sent: type, sender, recipient and Olm message type (0 pre-key, 1 normal).
    private(set) var sentToDevice: [(type: String, sender: UserID, to: DeviceRef, olmType: Int64?)] = []
    private var parties: Set<String> = []
    private var users: Set<UserID> = []
    /// Requests parties made through ``FakeTransport``, by name (`list_devices`, `keys_query`).
    private(set) var requests: [String: Int] = [:]

    func count(_ request: String) { requests[request, default: 0] += 1 }
    /// Published cross-signing keys per user: `master_key`, `self_signing_key`, `user_signing_key`.
    private(set) var signingKeys: [UserID: [String: JSONValue]] = [:]
    /// How many cross-signing uploads each user made (a second identity would show here).
    private(set) var signingKeyUploads: [UserID: Int] = [:]
    /// While true, every signature upload is refused (reported in `failures`, as Synapse does).
    var refuseSignatures = false

    func setRefuseSignatures(_ refuse: Bool) { refuseSignatures = refuse }

    func register(party: String) { parties.insert(party) }

    /// The media repository: uploaded files by media id (history bundles).
    private var media: [String: [UInt8]] = [:]

    func uploadMedia(_ bytes: [UInt8]) -> String {
        let id = "m\(media.count + 1)"
        media[id] = bytes
        return "mxc://localhost/\(id)"
    }

    func download(_ uri: MediaURI) -> [UInt8]? { uri.server == "localhost" ? media[uri.mediaID] : nil }

    func deviceIDs(of userID: UserID) -> [DeviceID] { (devices[userID] ?? [:]).keys.sorted() }

    func delete(_ deviceID: DeviceID, of userID: UserID) {
        devices[userID]?[deviceID] = nil
        for party in parties { changedUsers[party, default: []].insert(userID) }
    }

    /// Registers a user: true when it was not registered before (Synapse's 200 against M_USER_IN_USE).
    func register(_ userID: UserID) -> Bool { users.insert(userID).inserted }

    func provision(_ deviceID: DeviceID, for userID: UserID) {
        devices[userID, default: [:]][deviceID] = devices[userID]?[deviceID] ?? Device(keys: .null)
    }

    /// Takes a device's keys; like Synapse, refuses (nil) a one-time key id the device already holds
    /// with other contents (what a new account on an old device runs into).
    func upload(_ body: JSONValue, userID: UserID, deviceID: DeviceID) -> [String: Int]? {
        // Like Synapse: masquerading as a device that does not exist is refused (M_UNKNOWN_DEVICE).
        guard var device = devices[userID]?[deviceID] else { return nil }
        for (id, key) in body["one_time_keys"]?.objectValue ?? [:] {
            if let held = device.oneTimeKeys.first(where: { $0.0 == id }), held.1 != key { return nil }
        }
        if let keys = body["device_keys"] {
            device.keys = keys
            for party in parties { changedUsers[party, default: []].insert(userID) }
        }
        for (id, key) in (body["one_time_keys"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) { device.oneTimeKeys.append((id, key)) }
        if let (id, key) = body["fallback_keys"]?.objectValue?.first { device.fallback = (id, key) }
        devices[userID, default: [:]][deviceID] = device
        return ["signed_curve25519": device.oneTimeKeys.count]
    }

    /// Adds a device that was not made by a machine (e.g. a dehydrated one built with raw Olm).
    func addForeignDevice(userID: UserID, deviceID: DeviceID, keys: JSONValue, oneTimeKeys: [(String, JSONValue)]) {
        devices[userID, default: [:]][deviceID] = Device(keys: keys, oneTimeKeys: oneTimeKeys)
        for party in parties { changedUsers[party, default: []].insert(userID) }
    }

    /// Removes every one-time and fallback key of a device, so claims for it fail.
    func exhaustKeys(userID: UserID, deviceID: DeviceID) {
        devices[userID]?[deviceID]?.oneTimeKeys = []
        devices[userID]?[deviceID]?.fallback = nil
    }

    func oneTimeKeyCount(_ userID: UserID, _ deviceID: DeviceID) -> Int { devices[userID]?[deviceID]?.oneTimeKeys.count ?? 0 }

    func query(_ users: [UserID], requester: UserID? = nil) -> JSONValue {
        var answer: [String: JSONValue] = [:]
        var masters: [String: JSONValue] = [:], selfSigning: [String: JSONValue] = [:], userSigning: [String: JSONValue] = [:]
        for user in users {
            var list: [String: JSONValue] = [:]
            for (id, device) in devices[user] ?? [:] where device.keys != .null { list[id.rawValue] = device.keys }
            answer[user.rawValue] = .object(list)
            masters[user.rawValue] = signingKeys[user]?["master_key"]
            selfSigning[user.rawValue] = signingKeys[user]?["self_signing_key"]
            // Like Synapse: a user-signing key only for its own user.
            if user == requester { userSigning[user.rawValue] = signingKeys[user]?["user_signing_key"] }
        }
        return [
            "device_keys": .object(answer), "master_keys": .object(masters), "self_signing_keys": .object(selfSigning),
            "user_signing_keys": .object(userSigning), "failures": [:],
        ]
    }

    /// Takes a user's cross-signing keys (replacing any: an appservice needs no interactive auth).
    func uploadSigningKeys(_ body: JSONValue, userID: UserID) {
        signingKeyUploads[userID, default: 0] += 1
        for name in ["master_key", "self_signing_key", "user_signing_key"] {
            if let key = body[name] { signingKeys[userID, default: [:]][name] = key }
        }
        for party in parties { changedUsers[party, default: []].insert(userID) }
    }

    /// Adds signatures of a user's own devices, checking (as Synapse does) that the signed object is
    /// the stored device keys; refused ones come back as failures.
    func uploadSignatures(_ body: JSONValue, userID: UserID) -> [String: JSONValue] {
        var failures: [String: JSONValue] = [:]
        if refuseSignatures { return [userID.rawValue: ["*": ["errcode": "M_INVALID_SIGNATURE"]]] }
        // Another user's master key signed by this user's user-signing key (not checked here).
        for (target, signedKeys) in body.objectValue ?? [:] where target != userID.rawValue {
            for (keyID, signed) in signedKeys.objectValue ?? [:] {
                guard let targetID = try? UserID(target), case .object(var master)? = signingKeys[targetID]?["master_key"],
                    master["keys"]?["ed25519:\(keyID)"] != nil, let added = signed["signatures"]?[userID.rawValue]?.objectValue
                else {
                    failures[target, default: [:]] = .object([keyID: ["errcode": "M_NOT_FOUND"]])
                    continue
                }
                var signatures = master["signatures"]?.objectValue ?? [:]
                signatures[userID.rawValue] = .object((signatures[userID.rawValue]?.objectValue ?? [:]).merging(added) { _, new in new })
                master["signatures"] = .object(signatures)
                signingKeys[targetID]?["master_key"] = .object(master)
            }
        }
        for (deviceText, signed) in body[userID.rawValue]?.objectValue ?? [:] {
            guard let deviceID = try? DeviceID(deviceText), case .object(var stored)? = devices[userID]?[deviceID]?.keys,
                case .object(var incoming) = signed
            else {
                failures[userID.rawValue, default: [:]] = .object([deviceText: ["errcode": "M_NOT_FOUND"]])
                continue
            }
            let newSignatures = incoming["signatures"]?[userID.rawValue]?.objectValue ?? [:]
            incoming["signatures"] = nil
            var bare = stored
            bare["signatures"] = nil
            guard bare == incoming else {
                failures[userID.rawValue, default: [:]] = .object([deviceText: ["errcode": "M_INVALID_SIGNATURE"]])
                continue
            }
            var mine = stored["signatures"]?[userID.rawValue]?.objectValue ?? [:]
            mine.merge(newSignatures) { _, new in new }
            var signatures = stored["signatures"]?.objectValue ?? [:]
            signatures[userID.rawValue] = .object(mine)
            stored["signatures"] = .object(signatures)
            devices[userID]?[deviceID]?.keys = .object(stored)
        }
        return failures
    }

    /// Replaces a device's published keys with a signed copy (as a client's `/keys/signatures/upload`
    /// of a signature by a key the fake does not check would).
    func replaceDeviceKeys(_ user: UserID, _ deviceID: DeviceID, with keys: JSONValue) {
        devices[user]?[deviceID]?.keys = keys
        for party in parties { changedUsers[party, default: []].insert(user) }
    }

    func claim(_ body: JSONValue) -> JSONValue {
        var answer: [String: JSONValue] = [:]
        for (user, wanted) in body["one_time_keys"]?.objectValue ?? [:] {
            guard let userID = try? UserID(user) else { continue }
            var byDevice: [String: JSONValue] = [:]
            for (device, _) in wanted.objectValue ?? [:] {
                guard let deviceID = try? DeviceID(device), var entry = devices[userID]?[deviceID] else { continue }
                if !entry.oneTimeKeys.isEmpty {
                    let (id, key) = entry.oneTimeKeys.removeFirst()
                    byDevice[device] = .object([id: key])
                    devices[userID]?[deviceID] = entry
                } else if let (id, key) = entry.fallback {
                    byDevice[device] = .object([id: key])
                }
            }
            answer[user] = .object(byDevice)
        }
        return ["one_time_keys": .object(answer), "failures": [:]]
    }

    func sendToDevice(_ request: ToDeviceRequest, sender: UserID) {
        for (user, byDevice) in request.messages {
            for (device, content) in byDevice {
                inbox[user, default: [:]][device, default: []].append(
                    ToDeviceEvent(type: request.eventType, sender: sender, content: content, toUserID: user, toDeviceID: device))
                let olmType = content["ciphertext"]?.objectValue?.first?.value["type"]?.integerValue
                sentToDevice.append((request.eventType, sender, DeviceRef(userID: user, deviceID: device), olmType))
            }
        }
    }

    @discardableResult
    func sendRoomEvent(_ roomID: RoomID, type: String, content: JSONValue, sender: UserID, stateKey: String? = nil) -> EventID {
        eventCounter += 1
        let eventID = try! EventID("$e\(eventCounter)")
        var event: JSONValue = [
            "type": .string(type), "room_id": .string(roomID.rawValue), "sender": .string(sender.rawValue),
            "event_id": .string(eventID.rawValue), "content": content,
        ]
        if let stateKey, case .object(var members) = event {
            members["state_key"] = .string(stateKey)
            event = .object(members)
        }
        timeline.append(event)
        return eventID
    }

    /// To-device messages for `devices` (removed from the inbox) and device-list changes since the last drain.
    func drain(party: String, devices local: [(UserID, DeviceID)]) -> ([ToDeviceEvent], [UserID]) {
        var toDevice: [ToDeviceEvent] = []
        for (user, device) in local {
            toDevice += inbox[user]?[device] ?? []
            inbox[user]?[device] = []
        }
        let changed = (changedUsers[party] ?? []).sorted()
        changedUsers[party] = []
        return (toDevice, changed)
    }
}

/// Synapse's 400 for a one-time key id the device already holds with other contents.
struct OneTimeKeyExists: Error {}

/// A ``CryptoTransport`` that acts on the fake homeserver as one party.
struct FakeTransport: CryptoTransport {
    let homeserver: FakeHomeserver

    func registerUser(_ userID: UserID) async throws -> Bool { await homeserver.register(userID) }

    func createDevice(_ deviceID: DeviceID, for userID: UserID, displayName: String) async throws {
        await homeserver.provision(deviceID, for: userID)
    }

    func uploadKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> [String: Int] {
        guard let counts = await homeserver.upload(body, userID: userID, deviceID: device) else {
            throw OneTimeKeyExists()
        }
        return counts
    }

    func listDevices(of userID: UserID) async throws -> [DeviceID] {
        await homeserver.count("list_devices")
        return await homeserver.deviceIDs(of: userID)
    }

    func deleteDevice(_ deviceID: DeviceID, of userID: UserID) async throws { await homeserver.delete(deviceID, of: userID) }

    func queryKeys(_ users: [UserID], as requester: UserID) async throws -> JSONValue {
        await homeserver.count("keys_query")
        return await homeserver.query(users, requester: requester)
    }

    func uploadSigningKeys(_ body: JSONValue, as userID: UserID) async throws { await homeserver.uploadSigningKeys(body, userID: userID) }

    func uploadSignatures(_ body: JSONValue, as userID: UserID) async throws -> [String: JSONValue] {
        await homeserver.uploadSignatures(body, userID: userID)
    }

    func claimKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> JSONValue { await homeserver.claim(body) }

    func sendToDevice(_ request: ToDeviceRequest, as userID: UserID, device: DeviceID) async throws {
        await homeserver.sendToDevice(request, sender: userID)
    }

    func sendRoomEvent(_ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as userID: UserID, device: DeviceID) async throws -> EventID {
        await homeserver.sendRoomEvent(roomID, type: eventType, content: content, sender: userID)
    }

    func downloadMedia(_ uri: MediaURI, as userID: UserID, maxBytes: Int) async throws -> [UInt8] {
        guard let bytes = await homeserver.download(uri) else {
            throw MediaUnavailable(uri: uri)
        }
        guard bytes.count <= maxBytes else { throw MediaTooLarge(limit: maxBytes) }
        return bytes
    }
}
