import Bridge
import HomeserverClient
import MatrixModels
import Store

/// What the `puppets` command shows: how many puppets have a device, a page of them, and one in
/// detail, with its one-time key count as the homeserver holds it.
struct PuppetDirectory: Sendable {
    let store: PostgresCryptoStore
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
        let total = try await store.puppetCount(excluding: bot)
        let rows = try await store.puppets(excluding: bot, offset: (page - 1) * Self.pageSize, limit: Self.pageSize).map { device in
            (device.userID.rawValue, device.deviceID.rawValue + (device.deviceKeysUploaded ? "" : " (keys not uploaded)"))
        }
        let pages = max(1, (total + Self.pageSize - 1) / Self.pageSize)
        return CommandReply.table(title: "Puppets with a device: \(total) (page \(page) of \(pages))", rows: rows)
    }

    func show(_ user: UserID) async throws -> CommandReply {
        guard let device = try await store.deviceSummary(of: user) else { return CommandReply(body: "\(user) has no device here.") }
        // An empty upload changes nothing and answers with the server's counts.
        let counts = try? await homeserver.uploadKeys([:], userID: user, deviceID: device.deviceID)
        return CommandReply.table(title: "Puppet \(user)", rows: [
            ("device", device.deviceID.rawValue),
            ("device keys uploaded", device.deviceKeysUploaded ? "yes" : "no"),
            ("one-time keys on the homeserver", counts.map { "\($0["signed_curve25519"] ?? 0)" } ?? "homeserver unreachable"),
        ])
    }
}
