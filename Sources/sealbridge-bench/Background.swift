import Foundation
import Hummingbird
import Synchronization

/// Runs an HTTP application inside the benchmark process until stopped.
final class Background: Sendable {
    private let task: Task<Void, Never>
    let port: Int

    private init(task: Task<Void, Never>, port: Int) {
        self.task = task
        self.port = port
    }

    /// Starts the application built by `make` (which reports its listening port) and waits until it serves.
    static func start<App: ApplicationProtocol>(_ make: (@escaping @Sendable (Int) async -> Void) -> App) async throws -> Background {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = make { port in continuation.yield(port) }
        let task = Task<Void, Never> { _ = try? await app.run() }
        for await port in ports { return Background(task: task, port: port) }
        throw BenchError("the loopback server did not start")
    }

    func stop() async {
        task.cancel()
        _ = await task.value
    }
}

/// A free TCP port on 127.0.0.1, for listeners whose port comes from configuration.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
