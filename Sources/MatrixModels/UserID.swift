/// A user id, `@localpart:server`.
///
/// Accepts the historical localpart character set (0x21–0x39, 0x3B–0x7E: what older servers let users
/// register, uppercase included), since such users still exist and must be able to talk to a bridge.
public struct UserID: MatrixIdentifier {
    public let rawValue: String
    public let localpart: String
    public let serverName: ServerName

    public init(_ string: String) throws(IdentifierError) {
        try IdentifierRules.checkSigil(string, "@", "user id")
        let (local, server) = try IdentifierRules.split(string, kind: "user id", serverRequired: true)
        for byte in local.utf8 where !(0x21...0x39).contains(byte) && !(0x3B...0x7E).contains(byte) {
            throw IdentifierError(.invalidCharacter, "user id localpart has a character outside the allowed set: \"\(string)\"")
        }
        self.rawValue = string
        self.localpart = String(local)
        self.serverName = server!
    }

    /// `@localpart:server` from parts.
    public init(localpart: String, serverName: ServerName) throws(IdentifierError) {
        try self.init("@\(localpart):\(serverName.rawValue)")
    }
}

/// A room id, `!opaque` with an optional `:server` (room version 12 ids have none).
public struct RoomID: MatrixIdentifier {
    public let rawValue: String
    /// The server part, present in room ids before room version 12.
    public let serverName: ServerName?

    public init(_ string: String) throws(IdentifierError) {
        try IdentifierRules.checkSigil(string, "!", "room id")
        let (local, server) = try IdentifierRules.split(string, kind: "room id", serverRequired: false)
        try IdentifierRules.checkOpaque(local, string, "room id")
        self.rawValue = string
        self.serverName = server
    }
}

/// An event id, `$opaque` (a hash since room version 3; older ids carry `:server`).
public struct EventID: MatrixIdentifier {
    public let rawValue: String

    public init(_ string: String) throws(IdentifierError) {
        try IdentifierRules.checkSigil(string, "$", "event id")
        // The opaque part of a v3+ event id is unpadded base64 and may itself contain no colon; a
        // legacy id has one. Either way: a non-empty printable string.
        let body = string.dropFirst()
        guard !body.isEmpty else { throw IdentifierError(.empty, "event id has an empty local part") }
        try IdentifierRules.checkOpaque(body, string, "event id")
        self.rawValue = string
    }
}

/// A room alias, `#alias:server`.
public struct RoomAlias: MatrixIdentifier {
    public let rawValue: String
    public let serverName: ServerName

    public init(_ string: String) throws(IdentifierError) {
        try IdentifierRules.checkSigil(string, "#", "room alias")
        let (local, server) = try IdentifierRules.split(string, kind: "room alias", serverRequired: true)
        try IdentifierRules.checkOpaque(local, string, "room alias")
        self.rawValue = string
        self.serverName = server!
    }
}

/// A device id: an opaque, non-empty string chosen by the server or (MSC4190) by us.
public struct DeviceID: MatrixIdentifier {
    public let rawValue: String

    public init(_ string: String) throws(IdentifierError) {
        guard !string.isEmpty else { throw IdentifierError(.empty, "empty device id") }
        guard string.utf8.count <= IdentifierRules.maximumLength else { throw IdentifierError(.tooLong, "device id is too long") }
        for scalar in string.unicodeScalars where scalar.value < 0x20 || scalar.value == 0x7F {
            throw IdentifierError(.invalidCharacter, "device id contains a control character")
        }
        self.rawValue = string
    }
}
