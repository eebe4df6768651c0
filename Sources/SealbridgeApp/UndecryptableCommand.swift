import Bridge
import Foundation
import MatrixCrypto
import MatrixModels

/// `utd [ROOM]`: the events still waiting for their keys, per room, newest first, with why, since
/// when, and whether their key was asked for; `request ROOM SESSION` asks for a key again by hand.
struct UndecryptableCommand: Sendable {
    let machine: CryptoMachine
    /// Sends an `m.room_key_request` for a session events wait for (``CryptoEngine/requestRoomKey(roomID:sessionID:)``);
    /// nil: the `request` command is not offered.
    var requestKey: (@Sendable (RoomID, String) async throws -> Bool)?
    static let limit = 20

    var command: ManagementCommand {
        ManagementCommand(name: "utd", help: "utd [ROOM] lists events still undecryptable, per room, with the reason and any key request") { arguments, _ in
            await reply(arguments)
        }
    }

    var commands: [ManagementCommand] {
        guard requestKey != nil else { return [command] }
        return [
            command,
            ManagementCommand(name: "request", help: "request ROOM SESSION asks the sender's devices again for a missing room key") { arguments, _ in
                await request(arguments)
            },
        ]
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
            let requests = try await machine.outstandingKeyRequests(sessionIDs: Set(waiting.map(\.0.sessionID)))
            let now = Date()
            // Per room (rooms in the order of their newest waiting event), newest first within each.
            var order: [RoomID] = []
            for (parked, _) in waiting where !order.contains(parked.roomID) { order.append(parked.roomID) }
            let rows = order.flatMap { roomID in
                waiting.filter { $0.0.roomID == roomID }.map { parked, reason in
                    let age = parked.parkedAt.map { DaemonStatus.duration(now.timeIntervalSince($0)) + " ago" } ?? "now"
                    let shown = parked.surfaced ? ", delivered as undecryptable" : ""
                    let asked = requests.first { $0.roomID == parked.roomID && $0.sessionID == parked.sessionID }
                        .map { "key requested \(DaemonStatus.duration(max(0, now.timeIntervalSince($0.requestedAt)))) ago from \($0.recipients.count) device(s)" }
                        ?? "key not requested"
                    return (parked.eventID, "\(parked.roomID) from \(parked.sender), \(reason.reason), parked \(age)\(shown); \(asked); session \(parked.sessionID)")
                }
            }
            return CommandReply.table(title: "Undecryptable events (newest \(Self.limit)), per room", rows: rows)
        } catch {
            return CommandReply(body: "Could not read the undecryptable events: \(error)")
        }
    }

    func request(_ arguments: [String]) async -> CommandReply {
        guard let requestKey, arguments.count == 2, let room = try? RoomID(arguments[0]), KeyFormat.isSessionID(arguments[1]) else {
            return CommandReply(body: "usage: request !room:server SESSION_ID")
        }
        do {
            return try await requestKey(room, arguments[1])
                ? CommandReply(body: "Asked the sender's devices for the key of session \(arguments[1]) in \(room).")
                : CommandReply(body: "Nothing was asked: no event waits for that session in \(room), or no local member or sender device can be asked (or each was asked too often this minute).")
        } catch {
            return CommandReply(body: "Could not ask for the key: \(error)")
        }
    }
}
