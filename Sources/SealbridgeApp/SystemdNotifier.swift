import AppService
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The sd_notify protocol, spoken directly: datagrams to the socket systemd names in `$NOTIFY_SOCKET`
/// (`READY=1` once serving, `WATCHDOG=1` on time, `STOPPING=1` on shutdown). Does nothing when not
/// started by systemd with `Type=notify`.
struct SystemdNotifier: Sendable {
    let socketPath: String?
    /// Half of `WatchdogSec=` (`$WATCHDOG_USEC`), when the watchdog is meant for this process.
    let watchdogInterval: Duration?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends one state line; failures are ignored (systemd treats a missing READY as a start timeout).
    func notify(_ state: String) {
        guard let socketPath, socketPath.utf8.count < 108 else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // abstract namespace
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let bytes = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
    }
}

/// Pings the systemd watchdog while the daemon runs, and says `STOPPING=1` when shutdown begins.
///
/// The watchdog is not fed while a transaction has been in progress for longer than ``stuckAfter``
/// (far beyond any hold or retry): a stuck pipeline silences every room, so systemd should restart it.
struct SystemdWatchdogService: Service {
    let notifier: SystemdNotifier
    let heartbeat: PipelineHeartbeat
    var stuckAfter: Duration = .seconds(120)

    func run() async throws {
        if let interval = notifier.watchdogInterval {
            try? await cancelWhenGracefulShutdown {
                var reported = false
                while true {
                    let running = await heartbeat.longestRunning
                    if running < stuckAfter {
                        notifier.notify("WATCHDOG=1")
                        reported = false
                    } else if !reported {
                        notifier.notify("STATUS=a transaction has been in progress for \(running); not feeding the watchdog")
                        reported = true
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        notifier.notify("STOPPING=1")
    }
}
