/// One `PUT /_matrix/app/v1/transactions/{txnId}` body, decoded from every spelling homeservers use.
///
/// Room events stay raw ``JSONValue`` objects: the bridge pipeline interprets them. The MSC2409/MSC3202
/// extensions are decoded into typed fields, stable names first, then each unstable spelling.
public struct AppserviceTransaction: Sendable, Equatable {
    /// Room events (`events`).
    public var events: [JSONValue]
    /// Ephemeral events: receipts, typing, presence (`ephemeral` / `de.sorunome.msc2409.ephemeral`).
    public var ephemeral: [JSONValue]
    /// To-device messages for namespace devices (`to_device` / `de.sorunome.msc2409.to_device`).
    public var toDevice: [ToDeviceEvent]
    /// Entries of the to-device list that were left out, for any reason (also counted in ``skipped``).
    public var droppedToDevice: Int
    /// Users whose device lists changed or who no longer share a room (`device_lists`).
    public var deviceLists: DeviceListChanges
    /// One-time key counts per namespace device; an empty algorithm map means zero keys.
    public var oneTimeKeyCounts: [UserID: [DeviceID: [String: Int]]]
    /// Fallback key algorithms not yet used per device; an empty list means the fallback key was used.
    public var unusedFallbackKeyTypes: [UserID: [DeviceID: [String]]]
    /// Entries left out because they could not be read, by reason (see ``decode(_:)``).
    public var skipped: SkippedEntries

    public init(
        events: [JSONValue] = [], ephemeral: [JSONValue] = [], toDevice: [ToDeviceEvent] = [],
        droppedToDevice: Int = 0, deviceLists: DeviceListChanges = .init(),
        oneTimeKeyCounts: [UserID: [DeviceID: [String: Int]]] = [:],
        unusedFallbackKeyTypes: [UserID: [DeviceID: [String]]] = [:], skipped: SkippedEntries = .init()
    ) {
        self.events = events
        self.ephemeral = ephemeral
        self.toDevice = toDevice
        self.droppedToDevice = droppedToDevice
        self.deviceLists = deviceLists
        self.oneTimeKeyCounts = oneTimeKeyCounts
        self.unusedFallbackKeyTypes = unusedFallbackKeyTypes
        self.skipped = skipped
    }
}

/// A to-device message addressed to one of our devices.
public struct ToDeviceEvent: Sendable, Equatable {
    public var type: String
    public var sender: UserID
    public var content: JSONValue
    public var toUserID: UserID
    public var toDeviceID: DeviceID

    public init(type: String, sender: UserID, content: JSONValue, toUserID: UserID, toDeviceID: DeviceID) {
        self.type = type
        self.sender = sender
        self.content = content
        self.toUserID = toUserID
        self.toDeviceID = toDeviceID
    }
}

/// The `device_lists` section: whose devices to re-query, and whom we stopped sharing rooms with.
public struct DeviceListChanges: Sendable, Equatable {
    public var changed: [UserID]
    /// `left` (Synapse, spec) and `removed` (some libraries) merged.
    public var left: [UserID]

    public init(changed: [UserID] = [], left: [UserID] = []) {
        self.changed = changed
        self.left = left
    }

    public var isEmpty: Bool { changed.isEmpty && left.isEmpty }
}
