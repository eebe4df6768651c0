/// Why a transaction body was refused: not JSON at all, or JSON of the wrong shape.
public struct TransactionDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The body does not parse as JSON (`M_NOT_JSON`).
        case notJSON
        /// The body parses but a field has the wrong type (`M_BAD_JSON`).
        case badJSON
    }

    public var kind: Kind
    /// Names the field at fault; never quotes event content.
    public var message: String

    public var description: String { message }
}

extension AppserviceTransaction {
    /// The field spellings, stable name first.
    enum FieldNames {
        static let ephemeral = ["ephemeral", "de.sorunome.msc2409.ephemeral"]
        static let toDevice = ["to_device", "de.sorunome.msc2409.to_device"]
        static let deviceLists = ["device_lists", "org.matrix.msc3202.device_lists"]
        static let oneTimeKeyCounts = [
            "device_one_time_keys_count", "device_one_time_key_counts",
            "org.matrix.msc3202.device_one_time_keys_count", "org.matrix.msc3202.device_one_time_key_counts",
        ]
        static let unusedFallbackKeyTypes = [
            "device_unused_fallback_key_types", "org.matrix.msc3202.device_unused_fallback_key_types",
        ]
    }

    /// Decodes a transaction body.
    ///
    /// A to-device entry without a usable sender or recipient cannot be routed; it is dropped and
    /// counted in ``droppedToDevice`` rather than failing the whole transaction (the homeserver would
    /// otherwise retry the same body forever). Anything else of the wrong shape is `badJSON`.
    /// - Throws: ``TransactionDecodingError``.
    public static func decode(_ body: some Collection<UInt8>) throws(TransactionDecodingError) -> AppserviceTransaction {
        let root: JSONValue
        do {
            root = try JSONValue.parse(body)
        } catch {
            throw TransactionDecodingError(kind: .notJSON, message: "\(error)")
        }
        guard let object = root.objectValue else {
            throw TransactionDecodingError(kind: .badJSON, message: "transaction body must be a JSON object")
        }
        var transaction = AppserviceTransaction()
        transaction.events = try array(object, ["events"])
        transaction.ephemeral = try array(object, FieldNames.ephemeral)
        for entry in try array(object, FieldNames.toDevice) {
            if let event = ToDeviceEvent(entry) {
                transaction.toDevice.append(event)
            } else {
                transaction.droppedToDevice += 1
            }
        }
        if let lists = try field(object, FieldNames.deviceLists) {
            guard let lists = lists.objectValue else { throw bad("device_lists must be an object") }
            transaction.deviceLists = DeviceListChanges(
                changed: try userIDs(lists, ["changed"], "device_lists.changed"),
                left: try userIDs(lists, ["left"], "device_lists.left") + userIDs(lists, ["removed"], "device_lists.removed"))
        }
        if let counts = try field(object, FieldNames.oneTimeKeyCounts) {
            transaction.oneTimeKeyCounts = try perDevice(counts, "device_one_time_keys_count") {
                (value: JSONValue, path: String) throws(TransactionDecodingError) -> [String: Int] in
                guard let map = value.objectValue else { throw bad("\(path) must be an object") }
                var result: [String: Int] = [:]
                for (algorithm, count) in map {
                    guard let count = count.integerValue, count >= 0, count <= Int64(Int32.max) else {
                        throw bad("\(path).\(algorithm) must be a non-negative integer")
                    }
                    result[algorithm] = Int(count)
                }
                return result
            }
        }
        if let types = try field(object, FieldNames.unusedFallbackKeyTypes) {
            transaction.unusedFallbackKeyTypes = try perDevice(types, "device_unused_fallback_key_types") {
                (value: JSONValue, path: String) throws(TransactionDecodingError) -> [String] in
                guard let list = value.arrayValue else { throw bad("\(path) must be an array") }
                return try list.map { (item: JSONValue) throws(TransactionDecodingError) -> String in
                    guard let name = item.stringValue else { throw bad("\(path) must hold strings") }
                    return name
                }
            }
        }
        return transaction
    }

    private static func bad(_ message: String) -> TransactionDecodingError {
        TransactionDecodingError(kind: .badJSON, message: message)
    }

    /// The first present spelling of a field; `null` counts as absent.
    private static func field(_ object: [String: JSONValue], _ names: [String]) throws(TransactionDecodingError) -> JSONValue? {
        for name in names {
            if let value = object[name], value != .null { return value }
        }
        return nil
    }

    private static func array(_ object: [String: JSONValue], _ names: [String]) throws(TransactionDecodingError) -> [JSONValue] {
        guard let value = try field(object, names) else { return [] }
        guard let array = value.arrayValue else { throw bad("\(names[0]) must be an array") }
        return array
    }

    private static func userIDs(_ object: [String: JSONValue], _ names: [String], _ path: String) throws(TransactionDecodingError) -> [UserID] {
        try array(object, names).map { (value: JSONValue) throws(TransactionDecodingError) -> UserID in
            guard let string = value.stringValue, let id = try? UserID(string) else {
                throw bad("\(path) must hold user ids")
            }
            return id
        }
    }

    /// Decodes `{user_id: {device_id: T}}`.
    private static func perDevice<T>(
        _ value: JSONValue, _ path: String,
        _ decodeLeaf: (JSONValue, String) throws(TransactionDecodingError) -> T
    ) throws(TransactionDecodingError) -> [UserID: [DeviceID: T]] {
        guard let users = value.objectValue else { throw bad("\(path) must be an object") }
        var result: [UserID: [DeviceID: T]] = [:]
        for (user, devices) in users {
            guard let userID = try? UserID(user) else { throw bad("\(path) has a key that is not a user id") }
            guard let devices = devices.objectValue else { throw bad("\(path).\(user) must be an object") }
            var perDevice: [DeviceID: T] = [:]
            for (device, leaf) in devices {
                guard let deviceID = try? DeviceID(device) else { throw bad("\(path).\(user) has an invalid device id") }
                perDevice[deviceID] = try decodeLeaf(leaf, "\(path).\(user).\(device)")
            }
            result[userID] = perDevice
        }
        return result
    }
}

extension ToDeviceEvent {
    /// Reads one to-device entry; nil when it lacks a type, sender or valid recipient.
    init?(_ value: JSONValue) {
        guard let object = value.objectValue,
            let type = object["type"]?.stringValue,
            let sender = object["sender"]?.stringValue.flatMap({ try? UserID($0) }),
            let toUser = object["to_user_id"]?.stringValue.flatMap({ try? UserID($0) }),
            let toDevice = object["to_device_id"]?.stringValue.flatMap({ try? DeviceID($0) })
        else { return nil }
        self.init(
            type: type, sender: sender, content: object["content"] ?? .object([:]), toUserID: toUser, toDeviceID: toDevice)
    }
}
