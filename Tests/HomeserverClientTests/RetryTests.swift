import Foundation
import HomeserverClient
import Hummingbird
import Logging
import MatrixModels
import Synchronization
import Testing

/// A scripted fake homeserver on a loopback port, only for the client's retry and masquerading rules;
/// what the endpoints do is proven against a real Synapse in SynapseDeviceTests.
final class ScriptedServer: Sendable {
    let answers: Mutex<[(Int, String)]>
    let seen = Mutex<[String]>([])

    init(_ answers: [(Int, String)]) {
        self.answers = Mutex(answers)
    }

    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("**") { request, _ -> Response in
            self.seen.withLock { $0.append(request.uri.description) }
            let (status, json) = self.answers.withLock { $0.isEmpty ? (200, "{}") : $0.removeFirst() }
            return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
        }
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in announce.yield(channel.localAddress?.port ?? 0) },
            logger: { var quiet = Logger(label: "fake-homeserver"); quiet.logLevel = .critical; return quiet }())
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await app.runService(); return nil }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let result = try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        }
    }
}

@Suite("HomeserverClient retry and masquerading rules")
struct RetryTests {
    let alice = try! UserID("@sbtest_a:localhost")

    @Test("429 waits retry_after_ms then retries; masquerading sends user_id and both device_id names")
    func rateLimited() async throws {
        let server = ScriptedServer([(429, #"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":120}"#), (200, #"{"ok":true}"#)])
        let (result, elapsed) = try await server.run { url in
            let client = HomeserverClient(baseURL: url + "/", asToken: "t")
            let clock = ContinuousClock(), start = clock.now
            let result = try await client.request(.POST, "/_matrix/client/v3/x", as: .init(userID: self.alice, deviceID: try DeviceID("DEV 1")), body: [:])
            return (result, clock.now - start)
        }
        #expect(result["ok"] == true)
        #expect(elapsed >= .milliseconds(120))
        let uris = server.seen.withLock { $0 }
        #expect(uris.count == 2)
        #expect(uris[0].contains("user_id=%40sbtest_a%3Alocalhost"))
        #expect(uris[0].contains("&device_id=DEV%201"))
        #expect(uris[0].contains("org.matrix.msc3202.device_id=DEV%201"))
    }

    @Test("5xx is retried with backoff; a 4xx is returned at once with its errcode")
    func serverErrors() async throws {
        let server = ScriptedServer([(502, "{}"), (500, "{}"), (200, "{}"), (403, #"{"errcode":"M_FORBIDDEN","error":"no"}"#)])
        try await server.run { url in
            let client = HomeserverClient(baseURL: url, asToken: "t")
            _ = try await client.request(.POST, "/_matrix/client/v3/a")
            await #expect { try await client.request(.POST, "/_matrix/client/v3/b") } throws: {
                guard let error = $0 as? HomeserverError else { return false }
                return error.status == 403 && error.errcode == "M_FORBIDDEN" && error.message == "no"
            }
        }
        #expect(server.seen.withLock { $0.count } == 4)
    }

    @Test("giving up after maxAttempts reports the last status")
    func givesUp() async throws {
        let server = ScriptedServer(Array(repeating: (503, "{}"), count: 10))
        try await server.run { url in
            var client = HomeserverClient(baseURL: url, asToken: "t")
            client.maxAttempts = 2
            await #expect { try await client.request(.POST, "/_matrix/client/v3/c") } throws: { ($0 as? HomeserverError)?.status == 503 }
        }
        #expect(server.seen.withLock { $0.count } == 2)
    }
}
