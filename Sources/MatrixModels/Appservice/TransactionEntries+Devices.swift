extension TransactionEntries {
    /// `device_lists`: `changed`, and `left` merged with `removed` (some libraries' spelling).
    mutating func deviceLists(_ lists: Scanned) -> DeviceListChanges {
        guard case .members(let members) = lists else { return DeviceListChanges() }
        let fields = sections(members)
        let changed = userIDs(section(["changed"], in: fields))
        let left = userIDs(section(["left"], in: fields))
        return DeviceListChanges(changed: changed, left: left + userIDs(section(["removed"], in: fields)))
    }

    /// The elements of a user-id list that are user ids.
    mutating func userIDs(_ section: Scanned?) -> [UserID] {
        var ids: [UserID] = []
        for entry in elements(section) {
            guard let value = parse(entry) else { continue }
            guard let string = value.stringValue, let id = try? UserID(string) else {
                skipped.record(.badUserID)
                continue
            }
            ids.append(id)
        }
        return ids
    }

    /// Reads `{user_id: {device_id: T}}`, device by device.
    ///
    /// A user whose key is not a user id, or whose value is not an object, is left out with all its
    /// devices; a device whose key is not a device id, or whose value `decodeLeaf` refuses (counted as
    /// `invalid`), is left out alone. A repeated user or device is read once, from its first occurrence.
    mutating func perDevice<T>(
        _ section: Scanned, invalid: SkippedEntries.Reason, _ decodeLeaf: (JSONValue) -> T?
    ) -> [UserID: [DeviceID: T]] {
        guard case .members(let users) = section else { return [:] }
        var result: [UserID: [DeviceID: T]] = [:]
        for user in users {
            guard let (key, value) = read(user) else { continue }
            guard let userID = try? UserID(key) else {
                skipped.record(.badUserID)
                continue
            }
            guard result[userID] == nil else {
                skipped.record(.duplicateKey)
                continue
            }
            guard case .members(let devices) = value else {
                if value != .null { skipped.record(.notAnObject) }
                continue
            }
            var perDevice: [DeviceID: T] = [:]
            for device in devices {
                guard let (key, value) = read(device) else { continue }
                guard let deviceID = try? DeviceID(key) else {
                    skipped.record(.badDeviceID)
                    continue
                }
                guard perDevice[deviceID] == nil else {
                    skipped.record(.duplicateKey)
                    continue
                }
                guard let json = parse(value) else { continue }
                guard let leaf = decodeLeaf(json) else {
                    skipped.record(invalid)
                    continue
                }
                perDevice[deviceID] = leaf
            }
            result[userID] = perDevice
        }
        return result
    }

    /// One device's one-time key counts: `{algorithm: count}`, each count an integer in 0...Int32.max.
    /// An empty object means zero keys and is kept.
    static func keyCounts(_ value: JSONValue) -> [String: Int]? {
        guard let map = value.objectValue else { return nil }
        var counts: [String: Int] = [:]
        for (algorithm, count) in map {
            guard let count = count.integerValue, (0...Int64(Int32.max)).contains(count) else { return nil }
            counts[algorithm] = Int(count)
        }
        return counts
    }

    /// One device's unused fallback key algorithms: an array of strings (empty: the fallback key was used).
    static func fallbackTypes(_ value: JSONValue) -> [String]? {
        guard let list = value.arrayValue else { return nil }
        let names = list.compactMap(\.stringValue)
        return names.count == list.count ? names : nil
    }
}
