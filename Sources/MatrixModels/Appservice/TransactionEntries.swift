/// Reads the entries a ``TransactionScanner`` found, each parsed on its own; bad ones are left out and
/// counted in ``skipped``.
struct TransactionEntries {
    let bytes: UnsafeBufferPointer<UInt8>
    var skipped = SkippedEntries()

    /// The members of an object by key, first occurrence only; repeats and unreadable members are counted.
    mutating func sections(_ members: [ScannedMember]) -> [String: Scanned] {
        var found: [String: Scanned] = [:]
        for member in members {
            guard let (key, value) = read(member) else { continue }
            if found[key] != nil {
                skipped.record(.duplicateSection)
            } else {
                found[key] = value
            }
        }
        return found
    }

    /// The first spelling that is present and not `null`. One of the wrong type is counted, and the next
    /// spelling read: a homeserver sending both is better served by the one that can be read.
    mutating func section(_ names: [String], in found: [String: Scanned]) -> Scanned? {
        for name in names {
            switch found[name] {
            case nil, .null?: continue
            case .wrongType?: skipped.record(.wrongSectionType)
            case let value?: return value
            }
        }
        return nil
    }

    /// A member's key and value; nil (counted) if the key or the member's syntax could not be read.
    mutating func read(_ member: ScannedMember) -> (String, Scanned)? {
        switch member.key {
        case .failure(let error):
            skipped.record(SkippedEntries.Reason(error))
            return nil
        case .success(let key):
            guard member.value != .unparseable else {
                skipped.record(.unparseable)
                return nil
            }
            return (key, member.value)
        }
    }

    /// The elements of an array section; none if it is absent.
    func elements(_ section: Scanned?) -> [Scanned] {
        if case .elements(let elements)? = section { return elements }
        return []
    }

    /// Parses one entry on its own; nil (counted) if it does not parse strictly.
    mutating func parse(_ entry: Scanned) -> JSONValue? {
        guard case .entry(let range) = entry else {
            skipped.record(.unparseable)
            return nil
        }
        let bytes = UnsafeBufferPointer(rebasing: self.bytes[range])
        switch Result(catching: { () throws(JSONError) -> JSONValue in try JSONValue.parseBuffer(bytes) }) {
        case .success(let value): return value
        case .failure(let error):
            skipped.record(SkippedEntries.Reason(error))
            return nil
        }
    }

    /// The elements of an event section that parse and are objects.
    mutating func objects(_ section: Scanned?) -> [JSONValue] {
        var objects: [JSONValue] = []
        for entry in elements(section) {
            guard let value = parse(entry) else { continue }
            guard case .object = value else {
                skipped.record(.notAnObject)
                continue
            }
            objects.append(value)
        }
        return objects
    }

    /// The to-device messages that can be routed, and how many were left out.
    mutating func toDeviceEvents(_ section: Scanned?) -> (events: [ToDeviceEvent], dropped: Int) {
        var events: [ToDeviceEvent] = [], dropped = 0
        for entry in elements(section) {
            if let event = toDeviceEvent(entry) { events.append(event) } else { dropped += 1 }
        }
        return (events, dropped)
    }

    /// One to-device message; nil (counted) without a type, a sender, or a valid recipient.
    mutating func toDeviceEvent(_ entry: Scanned) -> ToDeviceEvent? {
        guard let value = parse(entry) else { return nil }
        guard let object = value.objectValue else {
            skipped.record(.notAnObject)
            return nil
        }
        guard let type = object["type"]?.stringValue else {
            skipped.record(.badToDeviceType)
            return nil
        }
        guard let sender = object["sender"]?.stringValue.flatMap({ try? UserID($0) }) else {
            skipped.record(.badToDeviceSender)
            return nil
        }
        guard let toUser = object["to_user_id"]?.stringValue.flatMap({ try? UserID($0) }),
            let toDevice = object["to_device_id"]?.stringValue.flatMap({ try? DeviceID($0) })
        else {
            skipped.record(.badToDeviceRecipient)
            return nil
        }
        return ToDeviceEvent(
            type: type, sender: sender, content: object["content"] ?? .object([:]), toUserID: toUser, toDeviceID: toDevice)
    }
}
