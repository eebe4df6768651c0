import AppService
import Foundation
import HomeserverClient
import Logging
import SealbridgeApp
import ServiceLifecycle
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A SIGTERM must end the daemon within systemd's stop timeout: the nudge service used to wait for the
/// listener without end, and for a ping that Synapse answers only after calling us back while we close.
@Suite("Homeserver nudge: ends at shutdown, whatever it waits for", .timeLimit(.minutes(1)))
struct HomeserverNudgeShutdownTests {
    @Test("a wait for the listener ends when its task is cancelled; set() releases the others and later waits")
    func readySignal() async throws {
        let signal = ServerReadySignal()
        let cancelled = Task { () -> Bool in
            await signal.wait()
            return Task.isCancelled
        }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        #expect(await cancelled.value)
        let waiting = Task { () -> Bool in
            await signal.wait()
            return Task.isCancelled
        }
        try await Task.sleep(for: .milliseconds(50))
        await signal.set()
        #expect(await waiting.value == false)
        await signal.wait()
    }

    @Test("a graceful shutdown ends the service before the listener is up, and during a ping nobody answers")
    func endsOnShutdown() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        for listenerUp in [false, true] {
            let ready = ServerReadySignal()
            if listenerUp { await ready.set() }
            let nudge = HomeserverNudgeService(
                homeserver: HomeserverClient(baseURL: "http://127.0.0.1:\(silent.port)", asToken: "t"), appserviceID: "sealbridge",
                heartbeat: PipelineHeartbeat(), ready: ready, quietAfter: .seconds(3600), logger: Logger(label: "test"))
            let group = ServiceGroup(configuration: .init(services: [.init(service: nudge)], logger: Logger(label: "test")))
            let running = Task { try await group.run() }
            if listenerUp {
                // The ping is on the wire (and never answered) before the shutdown starts.
                #expect(try await silent.acceptConnection(within: .seconds(20)))
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
            let start = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(ContinuousClock.now - start < .seconds(5), "listener up: \(listenerUp)")
        }
    }
}

/// A TCP listener that takes connections and never answers them.
final class SilentListener: @unchecked Sendable {
    let descriptor: Int32
    let port: Int
    /// Connections taken and kept open (closed with the listener).
    private var connections: [Int32] = []

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        guard bound == 0, listen(descriptor, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    /// Takes the next connection (kept open, never answered); false if none came within `limit`.
    func acceptConnection(within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let connection = accept(descriptor, nil, nil)
            if connection >= 0 {
                connections.append(connection)
                return true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func close() {
        for connection in connections { Glibc.close(connection) }
        Glibc.close(descriptor)
    }
}
