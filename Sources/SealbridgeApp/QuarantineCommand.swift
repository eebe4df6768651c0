import AppService
import Bridge
import Foundation
import Logging

/// `quarantine` lists transactions set aside after repeated failures; `quarantine retry ID` runs one
/// again (after an upgrade that fixed the cause), under the crypto lock like any transaction.
struct QuarantineCommand: Sendable {
    let quarantine: TransactionQuarantine
    let retry: @Sendable (Int64) async throws -> Void

    var command: ManagementCommand {
        ManagementCommand(name: "quarantine", help: "quarantine lists set-aside transactions; quarantine retry ID runs one again") { arguments, _ in
            await reply(arguments)
        }
    }

    func reply(_ arguments: [String]) async -> CommandReply {
        if arguments.first == "retry" {
            guard arguments.count == 2, let id = Int64(arguments[1]) else { return CommandReply(body: "usage: quarantine retry ID") }
            do {
                try await retry(id)
                return CommandReply(body: "Quarantined transaction \(id) was processed and committed.")
            } catch {
                return CommandReply(body: "Transaction \(id) failed again: \(error)")
            }
        }
        guard arguments.isEmpty else { return CommandReply(body: "usage: quarantine | quarantine retry ID") }
        do {
            let entries = try await quarantine.list()
            guard !entries.isEmpty else { return CommandReply(body: "No transaction is quarantined.") }
            return CommandReply.table(title: "Quarantined transactions (newest first)", rows: entries.map { entry in
                let state = entry.resolvedAt == nil ? "waiting" : "retried successfully"
                return ("\(entry.id)", "txn \(entry.txnID), \(Self.format(entry.quarantinedAt)), \(entry.attempts) attempts, \(state): \(entry.error)")
            })
        } catch {
            return CommandReply(body: "Could not read the quarantine: \(error)")
        }
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
