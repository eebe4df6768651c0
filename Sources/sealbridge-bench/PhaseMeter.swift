import AppService
import Metrics
import Prometheus

/// The daemon's metrics as it runs them (Prometheus, on by default), and the split of a transaction's
/// time into ``TransactionPhase``s that the ingest rows print in their notes.
enum PhaseMeter {
    static let registry: PrometheusCollectorRegistry = {
        var factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        factory.durationHistogramBuckets[TransactionPhase.label] = TransactionPhase.buckets
        MetricsSystem.bootstrap(factory)
        return factory.registry
    }()

    /// Seconds and count recorded so far, per phase.
    static func snapshot() -> [TransactionPhase: (seconds: Double, count: Int)] {
        var found: [TransactionPhase: (seconds: Double, count: Int)] = [:]
        for line in registry.emitToString().split(separator: "\n") where line.hasPrefix(TransactionPhase.label) {
            // sealbridge_transaction_phase_seconds_sum{phase="decode"} 0.0123
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\""),
                let phase = TransactionPhase(rawValue: String(line[line.index(after: open)..<close])),
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            if line.hasPrefix(TransactionPhase.label + "_sum") { found[phase, default: (0, 0)].seconds = value }
            if line.hasPrefix(TransactionPhase.label + "_count") { found[phase, default: (0, 0)].count = Int(value) }
        }
        return found
    }

    /// "decode 0.37 · claim 0.21 · … ms a PUT (the rest of the latency: HTTP)", from two snapshots.
    static func describe(from before: [TransactionPhase: (seconds: Double, count: Int)], to after: [TransactionPhase: (seconds: Double, count: Int)], puts: Int)
        -> String
    {
        let parts = TransactionPhase.allCases.compactMap { phase -> String? in
            let seconds = (after[phase]?.seconds ?? 0) - (before[phase]?.seconds ?? 0)
            guard puts > 0, (after[phase]?.count ?? 0) > (before[phase]?.count ?? 0) else { return nil }
            return "\(phase.rawValue) \(String(format: "%.2f", seconds * 1000 / Double(puts)))"
        }
        return parts.isEmpty ? "no phases recorded" : "phases, ms a PUT: " + parts.joined(separator: " · ")
    }
}
