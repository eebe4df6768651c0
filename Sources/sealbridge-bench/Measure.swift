import Foundation
import Postgres

/// Wall time, CPU time and peak RSS of this process, read from the kernel.
enum Measure {
    /// Tells a profiler started as `perf record -D -1 --control fifo:CTL` (with `BENCH_PERF_CTL=CTL`)
    /// to sample only the measured part: `enable` before it, `disable` after.
    static func profiler(_ command: String) {
        guard let path = ProcessInfo.processInfo.environment["BENCH_PERF_CTL"], let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.write(Data((command + "\n").utf8))
        try? handle.close()
    }

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

    /// CPU seconds used so far by the processes of the PostgreSQL cluster behind `client` (its backends
    /// and background workers, from `pg_stat_activity`), by pid; read from /proc, so only for a
    /// cluster on this machine (empty otherwise).
    static func postgresCPU(_ client: PostgresClient) async -> [Int: Double] {
        guard let rows = try? await client.query("SELECT pid FROM pg_stat_activity") else { return [:] }
        var cpu: [Int: Double] = [:]
        for row in rows {
            guard let pid = try? row.decode(Int.self, "pid"), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command: state is the 3rd field, utime the 14th, stime the 15th.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            cpu[pid] = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        return cpu
    }

    /// The CPU the cluster used between two ``postgresCPU(_:)`` readings (processes that started in
    /// between count from zero).
    static func postgresCPUSeconds(from before: [Int: Double], to after: [Int: Double]) -> Double {
        after.reduce(0) { $0 + max(0, $1.value - (before[$1.key] ?? 0)) }
    }

    /// What a row's CPU says about its ceiling: with `events` handled in `wall` seconds, this process
    /// using `cpu` and PostgreSQL `postgresCPU` CPU seconds, how busy the machine's cores were and the
    /// rate at which the work would keep them busy all the time (every event costing the same CPU;
    /// this process on at most the cores it may run on, PostgreSQL on any). With one transaction in
    /// flight, the time a step waits for one thread (the machine's actor, PostgreSQL's backend, a
    /// commit's flush, the HTTP exchange) leaves cores idle: this bound is what no removal of waiting
    /// alone can pass; only less CPU an event can.
    static func cpuBound(
        events: Int, wall: Double, cpu: Double, postgresCPU: Double, ceiling: Double?, cores: Int = machineCores, ownCores: Int = allowedCores
    ) -> String {
        guard events > 0, wall > 0, cpu > 0, cores > 0, ownCores > 0 else { return "no CPU measured" }
        let busy = (cpu + postgresCPU) / (wall * Double(cores))
        let bound = min(Double(cores) / ((cpu + postgresCPU) / Double(events)), Double(min(ownCores, cores)) / (cpu / Double(events)))
        let ratio = ceiling.map { String(format: " = %.2f ×", bound / $0) } ?? ""
        return String(
            format: "CPU an event: %.0f µs here + %.0f µs PostgreSQL; the %d cores %.0f %% busy; busy all the time: at most %.0f events/s",
            cpu / Double(events) * 1e6, postgresCPU / Double(events) * 1e6, cores, busy * 100, bound) + ratio
    }

    /// The machine's online cores (PostgreSQL may use all of them).
    static var machineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The cores this process may run on (fewer under `taskset`): the bits of its affinity mask
    /// (`Cpus_allowed` in /proc/self/status, hex words separated by commas).
    static var allowedCores: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
        else { return machineCores }
        let bits = line.dropFirst("Cpus_allowed:".count).reduce(0) { count, character in
            count + (character.hexDigitValue?.nonzeroBitCount ?? 0)
        }
        return bits > 0 ? bits : machineCores
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
    /// CPU seconds PostgreSQL's processes used meanwhile (nil: not measured).
    var postgresCPUSeconds: Double? = nil
    /// The raw libolm rate for the same crypto, measured in this run on one core.
    var ceilingPerSecond: Double?
    var notes: String

    var ratio: Double? { ceilingPerSecond.map { throughputPerSecond / $0 } }
}
