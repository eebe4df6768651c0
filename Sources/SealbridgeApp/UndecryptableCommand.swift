import Bridge
import Foundation
import MatrixCrypto
import MatrixModels

/// `utd [ROOM]`: the events still waiting for their keys, newest first, with why and since when.
struct UndecryptableCommand: Sendable {
    let machine: CryptoMachine
    static let limit = 20

    var command: ManagementCommand {
        ManagementCommand(name: "utd", help: "utd [ROOM] lists events still undecryptable, with the reason") { arguments, _ in
            await reply(arguments)
        }
    }

    func reply(_ arguments: [String]) async -> CommandReply {
        var room: RoomID?
        if let text = arguments.first {
            guard let parsed = try? RoomID(text) else { return CommandReply(body: "usage: utd [!room:server]") }
            room = parsed
        }
        do {
            let waiting = try await machine.undecryptable(in: room, limit: Self.limit)
            guard !waiting.isEmpty else { return CommandReply(body: "No event is waiting for its key\(room.map { " in \($0)" } ?? "").") }
            let now = Date()
            return CommandReply.table(title: "Undecryptable events (newest \(Self.limit))", rows: waiting.map { parked, reason in
                let age = parked.parkedAt.map { DaemonStatus.duration(now.timeIntervalSince($0)) + " ago" } ?? "now"
                let shown = parked.surfaced ? ", delivered as undecryptable" : ""
                return (parked.eventID, "\(parked.roomID) from \(parked.sender), \(reason.reason), parked \(age)\(shown)")
            })
        } catch {
            return CommandReply(body: "Could not read the undecryptable events: \(error)")
        }
    }
}
