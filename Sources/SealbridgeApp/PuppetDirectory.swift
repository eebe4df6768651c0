import Bridge
import HomeserverClient
import MatrixModels
import Postgres

/// What the `puppets` command shows: how many puppets have a device, a page of them, and one in
/// detail, with its one-time key count as the homeserver holds it.
struct PuppetDirectory: Sendable {
    let client: PostgresClient
    let homeserver: HomeserverClient
    let bot: UserID
    static let pageSize = 20

    var command: ManagementCommand {
        ManagementCommand(name: "puppets", help: "puppets [PAGE] lists puppets with a device; puppets @user:server shows one") { arguments, _ in
            await reply(arguments)
        }
    }

    func reply(_ arguments: [String]) async -> CommandReply {
        do {
            if let first = arguments.first, first.hasPrefix("@") {
                guard let user = try? UserID(first) else { return CommandReply(body: "not a user id: \(first)") }
                return try await show(user)
            }
            guard let page = Int(arguments.first ?? "1"), page >= 1 else { return CommandReply(body: "usage: puppets [PAGE] | puppets @user:server") }
            return try await list(page: page)
        } catch {
            return CommandReply(body: "Could not read puppets: \(error)")
        }
    }

    func list(page: Int) async throws -> CommandReply {
        let total = try await client.query("""
            SELECT count(*) AS n FROM sealbridge_crypto_accounts WHERE user_id <> \(bot.rawValue)
            """).first?.decode(Int.self, "n") ?? 0
        let rows = try await client.query("""
            SELECT user_id, device_id, device_keys_uploaded FROM sealbridge_crypto_accounts WHERE user_id <> \(bot.rawValue)
            ORDER BY user_id LIMIT \(Self.pageSize) OFFSET \((page - 1) * Self.pageSize)
            """).map { row in
            (try row.decode(String.self, "user_id"),
             "\(try row.decode(String.self, "device_id"))\(try row.decode(Bool.self, "device_keys_uploaded") ? "" : " (keys not uploaded)")")
        }
        let pages = max(1, (total + Self.pageSize - 1) / Self.pageSize)
        return CommandReply.table(title: "Puppets with a device: \(total) (page \(page) of \(pages))", rows: rows)
    }

    func show(_ user: UserID) async throws -> CommandReply {
        guard let row = try await client.query("""
            SELECT device_id, device_keys_uploaded FROM sealbridge_crypto_accounts WHERE user_id = \(user.rawValue)
            """).first
        else { return CommandReply(body: "\(user) has no device here.") }
        let device = try DeviceID(try row.decode(String.self, "device_id"))
        let uploaded = try row.decode(Bool.self, "device_keys_uploaded")
        // An empty upload changes nothing and answers with the server's counts.
        let counts = try? await homeserver.uploadKeys([:], userID: user, deviceID: device)
        return CommandReply.table(title: "Puppet \(user)", rows: [
            ("device", device.rawValue),
            ("device keys uploaded", uploaded ? "yes" : "no"),
            ("one-time keys on the homeserver", counts.map { "\($0["signed_curve25519"] ?? 0)" } ?? "homeserver unreachable"),
        ])
    }
}
