import Foundation

/// Wall time, CPU time and peak RSS of this process, read from the kernel.
enum Measure {
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// User + system CPU seconds used by the process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Peak resident set size (VmHWM), in MiB.
    static func peakRSSMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        let kib = Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0") ?? 0
        return kib / 1024
    }

    /// The value at `fraction` (0…1) of sorted `samples`.
    static func percentile(_ samples: [Double], _ fraction: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
    }
}

/// One workload's figures, printed as a table row and written as JSON.
struct BenchResult: Codable {
    var workload: String
    var store: String
    var operations: Int
    var unit: String
    var wallSeconds: Double
    var cpuSeconds: Double
    var throughputPerSecond: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var peakRSSMiB: Double
    /// The raw libolm rate for the same crypto, measured in this run on one core.
    var ceilingPerSecond: Double?
    var notes: String

    var ratio: Double? { ceilingPerSecond.map { throughputPerSecond / $0 } }
}
