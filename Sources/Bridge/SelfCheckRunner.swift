import AppService
import Foundation
import MatrixCrypto
import MatrixModels

/// Runs one round of self-checks. Every check's I/O comes in as a closure, so the logic is tested
/// without a homeserver; none of them runs under the crypto lock or inside a database transaction.
public struct SelfCheckRunner: Sendable {
    /// Sends a probe carrying `nonce` from the bot's device to itself; false: the bot has no device yet.
    public typealias SendProbe = @Sendable (_ nonce: String) async throws -> Bool
    /// What the homeserver serves for the bot's device; nil: its keys were not uploaded yet.
    public typealias BotKeys = @Sendable () async throws -> LocalDeviceState?

    let probes: ToDeviceProbes
    let sendProbe: SendProbe
    let botKeys: BotKeys
    let registration: @Sendable () -> SelfCheckResult
    /// How long a probe may take to come back in a transaction.
    let timeout: Duration
    let poll: Duration

    public init(
        probes: ToDeviceProbes, sendProbe: @escaping SendProbe, botKeys: @escaping BotKeys,
        registration: @escaping @Sendable () -> SelfCheckResult, timeout: Duration = .seconds(30), poll: Duration = .milliseconds(100)
    ) {
        self.probes = probes
        self.sendProbe = sendProbe
        self.botKeys = botKeys
        self.registration = registration
        self.timeout = timeout
        self.poll = poll
    }

    /// Runs every check; the round trip and the key query run side by side.
    public func run() async -> SelfCheckReport {
        let registration = registration()
        async let keys = checkBotKeys()
        let (toDevice, arrival) = await roundTrip(registration: registration.state)
        let counts = keyCounts(arrival: arrival, toDevice: toDevice)
        return SelfCheckReport(results: [toDevice, counts, registration, await keys], finishedAt: Date())
    }

    /// Sends a probe from the bot to itself and waits for a transaction to bring it back.
    /// - Parameter registration: The registration check's outcome: when it passed, the registration's
    ///   ephemeral flags are known to be set and the fix names the homeserver's flag alone.
    func roundTrip(registration: SelfCheckResult.State) async -> (SelfCheckResult, ToDeviceProbes.Arrival?) {
        let nonce = probes.issue()
        let started = ContinuousClock.now
        do {
            guard try await sendProbe(nonce) else {
                probes.cancel(nonce)
                return (SelfCheckResult(.toDevice, .skipped, "the bot has no device yet"), nil)
            }
        } catch {
            probes.cancel(nonce)
            return (SelfCheckResult(
                .toDevice, .failed, "could not send a to-device message as the bot: \(error)",
                fix: "check homeserver.url and appservice.as_token in the Sealbridge configuration (run `sealbridge doctor`)"), nil)
        }
        while ContinuousClock.now - started < timeout {
            if let arrival = probes.take(nonce) {
                let elapsed = (ContinuousClock.now - started).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                return (SelfCheckResult(.toDevice, .ok, String(format: "a to-device message from the bot to itself came back in %.1f s", seconds)), arrival)
            }
            try? await Task.sleep(for: poll)
        }
        probes.cancel(nonce)
        let flag = "homeserver.yaml: experimental_features: msc2409_to_device_messages_enabled: true"
        let fix = switch registration {
        case .ok: "\(flag), then restart the homeserver (the registration file's ephemeral flags are set)"
        case .skipped: "\(flag), and in the registration file receive_ephemeral: true and de.sorunome.msc2409.push_ephemeral: true; then restart the homeserver"
        case .failed: "first the registration file (see the registration check), then \(flag); then restart the homeserver"
        }
        return (SelfCheckResult(
            .toDevice, .failed,
            "a to-device message from the bot to its own device did not come back in a transaction within \(timeout.components.seconds) s: the homeserver does not push to-device messages to the appservice, so no room keys arrive",
            fix: fix), nil)
    }

    /// MSC3202: Synapse adds the appservice's own sender to the key counts of every transaction when
    /// the extension is on, so the probe's transaction tells for sure; without one, what was last seen.
    func keyCounts(arrival: ToDeviceProbes.Arrival?, toDevice: SelfCheckResult) -> SelfCheckResult {
        let sightings = probes.sightings
        let lists = "device-list changes last seen: " + Self.age(sightings.deviceLists)
        let fix = "homeserver.yaml: experimental_features: msc3202_transaction_extensions: true, and in the registration file org.matrix.msc3202: true; then restart the homeserver"
        if let arrival {
            return arrival.withKeyCounts
                ? SelfCheckResult(.keyCounts, .ok, "the probe's transaction carried one-time key counts; \(lists)")
                : SelfCheckResult(.keyCounts, .failed, "the probe's transaction carried no one-time key counts (MSC3202): one-time keys are not topped up; \(lists)", fix: fix)
        }
        if sightings.keyCounts != nil {
            return SelfCheckResult(.keyCounts, .ok, "one-time key counts last seen: \(Self.age(sightings.keyCounts)); \(lists)")
        }
        if sightings.transaction != nil {
            return SelfCheckResult(
                .keyCounts, .failed, "transactions arrive but none carried one-time key counts (MSC3202) since the start; \(lists)", fix: fix)
        }
        return SelfCheckResult(.keyCounts, .skipped, "no transaction since the start to judge by (\(toDevice.state == .failed ? "see to_device" : "none yet"))")
    }

    func checkBotKeys() async -> SelfCheckResult {
        do {
            switch try await botKeys() {
            case nil:
                return SelfCheckResult(.botKeys, .skipped, "the bot's device keys are not uploaded yet")
            case .matches?:
                return SelfCheckResult(.botKeys, .ok, "the homeserver serves the bot's device with the stored identity keys")
            case .missing?:
                return SelfCheckResult(
                    .botKeys, .failed, "the homeserver has no device for the bot that the database holds keys for (logged out or deleted as stale)",
                    fix: "nothing to edit for now: the one-time key pass replaces the device; keep Synapse from deleting it again (homeserver.yaml: leave delete_stale_devices_after unset, see docs/devices.md)")
            case .foreignKeys?:
                return SelfCheckResult(
                    .botKeys, .failed, "the homeserver serves other identity keys for the bot's device than the database holds (a database restored from an older backup, or reset?)",
                    fix: "nothing to edit: the one-time key pass replaces the device with a fresh one; restore the matching database backup instead if you have it")
            }
        } catch {
            return SelfCheckResult(
                .botKeys, .failed, "could not ask the homeserver for the bot's keys: \(error)",
                fix: "check homeserver.url and appservice.as_token in the Sealbridge configuration")
        }
    }

    static func age(_ date: Date?) -> String {
        guard let date else { return "not since the start" }
        return "\(Int(Date().timeIntervalSince(date)))s ago"
    }
}
