import MatrixModels

/// A decrypted MSC4268 room key bundle: `room_keys` (exported sessions: `algorithm`, `room_id`,
/// `sender_key`, `sender_claimed_keys.ed25519`, `session_id`, `session_key` in the export format)
/// and `withheld` (`m.room_key.withheld` contents). Entries stay raw JSON: each is judged on its own
/// when imported, so one bad entry never spoils the rest.
public struct HistoryBundle: Sendable {
    /// Largest bundle downloaded: 16 MiB, about 50,000 sessions (an exported session is ~330 bytes).
    public static let maxBytes = 16 * 1024 * 1024
    /// Most entries read from one bundle; the rest are skipped and counted (`too_many`). The import
    /// runs under the crypto lock with a store read per session: this bounds how long one inviter
    /// can hold every transaction up.
    public static let maxEntries = 10_000

    public var roomKeys: [JSONValue]
    public var withheld: [JSONValue]

    /// Parses the plaintext of a bundle.
    ///
    /// - Throws: `malformed` when it is not a JSON object with a `room_keys` array (`withheld`, when
    ///   present, must be an array too).
    public init(plaintext: [UInt8]) throws(HistoryBundleFailure) {
        let json: JSONValue
        do {
            json = try JSONValue.parse(plaintext)
        } catch {
            throw .malformed("not JSON")
        }
        guard let keys = json["room_keys"]?.arrayValue else { throw .malformed("no room_keys array") }
        let withheld = json["withheld"]
        guard withheld == nil || withheld == .null || withheld?.arrayValue != nil else { throw .malformed("withheld is not an array") }
        roomKeys = keys
        self.withheld = withheld?.arrayValue ?? []
    }
}

/// What importing one bundle did, for metrics and logs (never a key).
public struct HistoryBundleOutcome: Sendable, Hashable {
    public var roomID: RoomID
    public var sender: UserID
    public var recipient: UserID
    /// nil: imported.
    public var failure: HistoryBundleFailure?
    /// Sessions stored from it.
    public var imported = 0
    /// Entries skipped, by reason (`other_room`, `malformed`, `unknown_owner`, `kept_ours`, `too_many`).
    public var skipped: [String: Int] = [:]

    public init(roomID: RoomID, sender: UserID, recipient: UserID, failure: HistoryBundleFailure? = nil) {
        self.roomID = roomID
        self.sender = sender
        self.recipient = recipient
        self.failure = failure
    }

    /// The bundle's metric label: `imported` or the failure's.
    public var label: String { failure?.label ?? "imported" }
}
