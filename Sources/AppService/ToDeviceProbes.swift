import Foundation
import MatrixModels
import Metrics
import Synchronization

/// The daemon's own to-device messages (`io.sealbridge.self_check`), sent from the bot to the bot's
/// device to prove that the homeserver pushes to-device messages to the appservice, and what recent
/// transactions carried (MSC3202 sections).
///
/// A probe is counted only when its sender and recipient are the bot and its nonce is one this
/// process issued and has not seen yet: anyone on the federation can send this type to the bot, but
/// cannot make a check pass or do anything else with it. Every message of this type is taken out of
/// the transaction before the crypto machine or the bridge logic sees it (``ProbeObservingHandler``).
public final class ToDeviceProbes: Sendable {
    /// The event type of a probe; private to Sealbridge.
    public static let eventType = "io.sealbridge.self_check"
    /// At most this many probes wait at once (oldest forgotten first): a stuck homeserver cannot grow the set.
    static let maxOutstanding = 16

    /// A probe that came back.
    public struct Arrival: Sendable, Equatable {
        public var at: Date
        /// The transaction that carried it also carried MSC3202 one-time key counts or fallback key types
        /// (Synapse adds the appservice's sender to every transaction's key counts when MSC3202 is on).
        public var withKeyCounts: Bool
    }

    /// When transactions last carried each kind of section; nil: not since the start.
    public struct Sightings: Sendable, Equatable {
        public var transaction: Date?
        public var toDevice: Date?
        public var keyCounts: Date?
        public var deviceLists: Date?
    }

    struct State {
        var outstanding: [String: Date] = [:]
        var arrived: [String: Arrival] = [:]
        var sightings = Sightings()
    }

    public let bot: UserID
    private let state = Mutex(State())
    private let ignored = Counter(label: "sealbridge_self_check_probes_ignored_total")

    public init(bot: UserID) {
        self.bot = bot
    }

    /// A fresh nonce (128 random bits, hex) that counts when it comes back.
    public func issue(now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<4).map { _ in String(format: "%08x", generator.next() as UInt32) }.joined()
        state.withLock { state in
            if state.outstanding.count >= Self.maxOutstanding, let oldest = state.outstanding.min(by: { $0.value < $1.value })?.key {
                state.outstanding[oldest] = nil
            }
            state.outstanding[nonce] = now
        }
        return nonce
    }

    /// The arrival of `nonce`, once (it is forgotten after this returns it); nil while it has not come.
    public func take(_ nonce: String) -> Arrival? {
        state.withLock { $0.arrived.removeValue(forKey: nonce) }
    }

    /// Forgets a probe that did not come back in time (a late arrival is then ignored).
    public func cancel(_ nonce: String) {
        state.withLock { state in
            state.outstanding[nonce] = nil
            state.arrived[nonce] = nil
        }
    }

    public var sightings: Sightings { state.withLock { $0.sightings } }

    /// Splits a transaction's to-device messages into probes and the rest.
    public static func partition(_ messages: [ToDeviceEvent]) -> (probes: [ToDeviceEvent], rest: [ToDeviceEvent]) {
        var probes: [ToDeviceEvent] = [], rest: [ToDeviceEvent] = []
        for message in messages {
            if message.type == eventType { probes.append(message) } else { rest.append(message) }
        }
        return (probes, rest)
    }

    /// Records a committed transaction: its probes (counted only if genuine) and which sections it carried.
    public func observe(_ transaction: AppserviceTransaction, probes: [ToDeviceEvent], now: Date = Date()) {
        let withKeyCounts = !transaction.oneTimeKeyCounts.isEmpty || !transaction.unusedFallbackKeyTypes.isEmpty
        var foreign = 0
        state.withLock { state in
            state.sightings.transaction = now
            if !transaction.toDevice.isEmpty || !probes.isEmpty { state.sightings.toDevice = now }
            if withKeyCounts { state.sightings.keyCounts = now }
            if !transaction.deviceLists.isEmpty { state.sightings.deviceLists = now }
            for probe in probes {
                guard probe.sender == bot, probe.toUserID == bot, let nonce = probe.content["nonce"]?.stringValue,
                    state.outstanding.removeValue(forKey: nonce) != nil
                else {
                    foreign += 1
                    continue
                }
                state.arrived[nonce] = Arrival(at: now, withKeyCounts: withKeyCounts)
            }
        }
        if foreign > 0 { ignored.increment(by: foreign) }
    }
}
