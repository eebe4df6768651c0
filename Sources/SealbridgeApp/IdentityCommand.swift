import Bridge
import MatrixCrypto
import MatrixModels

/// The bot's cross-signing identity and how far the backfill got: the `identity` command and a
/// `status` row.
struct IdentityStatus: Sendable {
    let store: any CryptoStore
    let bot: UserID
    /// nil: cross-signing is off.
    let backfill: CrossSigningBackfillService?

    /// `complete/devices` and the backfill's state, for `status`.
    func summary() async -> String {
        guard let backfill else { return "off (encryption.cross_signing.enabled: false)" }
        guard let progress = try? await store.crossSigningProgress() else { return "unknown (database)" }
        let pass = backfill.progress
        var text = "\(progress.complete) of \(progress.devices)"
        if pass.running { text += ", backfill running" }
        if pass.failed > 0 { text += ", \(pass.failed) failures since start" }
        return text
    }

    var command: ManagementCommand {
        ManagementCommand(name: "identity", help: "the bot's cross-signing fingerprint and the cross-signing backfill's progress") { _, _ in
            await reply()
        }
    }

    func reply() async -> CommandReply {
        var rows: [(String, String)] = []
        do {
            if let identity = try await store.crossSigningIdentity(userID: bot) {
                rows.append(("bot", bot.rawValue))
                rows.append(("master key fingerprint", MasterKeyFingerprint.grouped(identity.keys.master)))
                rows.append(("published", identity.published ? "yes" : "not yet"))
                rows.append(("device signed", identity.signedDeviceID?.rawValue ?? "not yet"))
            } else {
                rows.append(("bot", "\(bot.rawValue): no cross-signing identity yet"))
            }
        } catch {
            rows.append(("bot", "unknown (database: \(error))"))
        }
        rows.append(("cross-signed devices", await summary()))
        if let backfill, let error = backfill.progress.lastError { rows.append(("last backfill error", error)) }
        return CommandReply.table(title: "Cross-signing identity", rows: rows)
    }
}
