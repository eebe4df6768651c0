import Bridge
import Foundation
import HomeserverClient
import MatrixModels
import Postgres
import Store

/// The facts `status` reports, read fresh on each call.
struct DaemonStatus: Sendable {
    let client: PostgresClient
    let homeserver: HomeserverClient
    let startedAt: Date
    let undecryptable: UndecryptableLog
    let keyGauge: OneTimeKeyGauge
    /// The bridge API's outbox, to show deliveries nobody consumed yet; nil when the API is off.
    let outbox: Outbox?
    /// Cross-signing of local devices and the backfill's progress.
    let identities: IdentityStatus
    /// The periodic walk over every device's one-time key count.
    let keyCheck: OneTimeKeyCheckService
    /// A device under this many one-time keys on the server counts as low (a quarter of the 50 kept).
    static let lowKeyThreshold = 13
    let bot: UserID
    /// The last round of self-checks; nil when they are off.
    var selfChecks: SelfCheckService? = nil

    func rows() async -> [(String, String)] {
        let now = Date()
        var rows: [(String, String)] = [
            ("version", SealbridgeInfo.version),
            ("uptime", Self.duration(now.timeIntervalSince(startedAt))),
            ("homeserver", await homeserver.isReachable() ? "reachable" : "UNREACHABLE"),
        ]
        do {
            let counts = try await DaemonCounts.read(client, bot: bot)
            rows += [
                ("database", "reachable"),
                ("transactions processed", "\(counts.transactions)"),
                ("last transaction", counts.lastTransactionAge.map { Self.duration(TimeInterval($0)) + " ago" } ?? "none yet"),
                ("puppets with a device", "\(counts.puppets)"),
                ("devices (bot and puppets)", "\(counts.devices)"),
                ("encrypted rooms", "\(counts.rooms)"),
                ("events waiting for their keys (utd)", "\(counts.parked)"),
                ("to-device messages waiting for their sender's devices", "\(counts.pendingToDevice)"),
                ("quarantined transactions (quarantine)", "\(counts.quarantined)"),
            ]
        } catch {
            rows.append(("database", "UNREACHABLE"))
        }
        rows.append(("undecryptable events, last hour", "\(await undecryptable.count(since: now.addingTimeInterval(-3600)))"))
        if let outbox {
            rows.append(("bridge API deliveries waiting", (try? await outbox.pendingCount()).map { "\($0)" } ?? "unknown"))
        }
        rows.append(("cross-signed devices (identity)", await identities.summary()))
        rows.append(("one-time key pass", Self.keyPass(keyCheck.progress)))
        rows.append(("devices low on one-time keys (< \(Self.lowKeyThreshold), last reported)", "\(await keyGauge.low(below: Self.lowKeyThreshold))"))
        if let selfChecks { rows += Self.selfCheckRows(selfChecks.last, now: now) }
        return rows
    }

    /// A summary row, then one row per check: `ok`, `SKIPPED` or `FAILED`, with what to change.
    static func selfCheckRows(_ report: SelfCheckReport?, now: Date) -> [(String, String)] {
        guard let report else { return [("self-checks", "not run yet")] }
        let failed = report.failures.count
        var rows = [("self-checks", (failed == 0 ? "all passed" : "\(failed) FAILED") + ", \(duration(now.timeIntervalSince(report.finishedAt))) ago")]
        for result in report.results {
            let state = result.state == .ok ? "ok" : result.state.rawValue.uppercased()
            rows.append(("self-check \(result.name.rawValue)", "\(state): \(result.detail)" + (result.fix.map { " — fix: \($0)" } ?? "")))
        }
        return rows
    }

    static func keyPass(_ progress: OneTimeKeyCheckService.Progress) -> String {
        var parts: [String] = []
        if progress.running { parts.append("running, \(progress.checked) devices so far") }
        if let devices = progress.lastPassDevices, let finished = progress.lastPassFinishedAt {
            parts.append("last pass \(devices) devices in \(duration(progress.lastPassSeconds ?? 0)), \(duration(Date().timeIntervalSince(finished))) ago")
        }
        if progress.toppedUp > 0 || progress.failed > 0 { parts.append("\(progress.toppedUp) topped up, \(progress.failed) unreadable") }
        if progress.fallbackRotated > 0 { parts.append("\(progress.fallbackRotated) fallback keys rotated") }
        if progress.replaced > 0 { parts.append("\(progress.replaced) lost devices replaced") }
        return parts.isEmpty ? "not run yet" : parts.joined(separator: "; ")
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(total % 60)s" }
        if total < 86_400 { return "\(total / 3600)h \(total % 3600 / 60)m" }
        return "\(total / 86_400)d \(total % 86_400 / 3600)h"
    }
}
