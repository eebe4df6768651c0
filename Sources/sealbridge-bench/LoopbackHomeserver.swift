import Bridge
import Foundation
import Hummingbird
import Logging
import MatrixCrypto
import MatrixModels
import NIOCore

/// The load generator's homeserver on a loopback port: the client-server endpoints the crypto
/// pipeline calls, answered from ``BenchTransport``'s memory with Synapse's response shapes, so the
/// real ``HomeserverClient`` (HTTP, JSON, retries) is in the measured path. Not a correctness oracle.
enum LoopbackHomeserver {
    @Sendable static func user(_ request: Request) throws -> UserID {
        try UserID(request.uri.queryParameters.get("user_id") ?? "@bench_bot:bench")
    }

    @Sendable static func device(_ request: Request) throws -> DeviceID {
        try DeviceID(request.uri.queryParameters.get("device_id") ?? "NONE")
    }

    @Sendable static func body(_ request: Request) async throws -> JSONValue {
        try JSONValue.parse(try await request.body.collect(upTo: 64 << 20).readableBytesView)
    }

    @Sendable static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    static func application(_ state: BenchTransport, ready: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.get("/_matrix/client/versions") { _, _ in Self.json(["versions": ["v1.11"]]) }
        router.post("/_matrix/client/v3/register") { request, _ in
            let username = try await Self.body(request)["username"]?.stringValue ?? "x"
            return Self.json(["user_id": .string("@\(username):bench")])
        }
        router.put("/_matrix/client/v3/devices/:device") { _, _ in Self.json([:]) }
        router.delete("/_matrix/client/v3/devices/:device") { _, _ in Self.json([:]) }
        router.get("/_matrix/client/v3/devices") { request, _ in
            let devices = try await state.listDevices(of: try Self.user(request))
            return Self.json(["devices": .array(devices.map { ["device_id": .string($0.rawValue)] })])
        }
        router.post("/_matrix/client/v3/keys/upload") { request, _ in
            let counts = try await state.uploadKeys(try await Self.body(request), as: try Self.user(request), device: try Self.device(request))
            return Self.json(["one_time_key_counts": .object(counts.mapValues { .integer(Int64($0)) })])
        }
        router.post("/_matrix/client/v3/keys/query") { request, _ in
            let users = (try await Self.body(request)["device_keys"]?.objectValue ?? [:]).keys.compactMap { try? UserID($0) }
            return Self.json(try await state.queryKeys(users, as: try Self.user(request)))
        }
        router.post("/_matrix/client/v3/keys/device_signing/upload") { request, _ in
            try await state.uploadSigningKeys(try await Self.body(request), as: try Self.user(request))
            return Self.json([:])
        }
        router.post("/_matrix/client/v3/keys/signatures/upload") { request, _ in
            Self.json(["failures": .object(try await state.uploadSignatures(try await Self.body(request), as: try Self.user(request)))])
        }
        router.post("/_matrix/client/v3/keys/claim") { request, _ in
            Self.json(try await state.claimKeys(try await Self.body(request), as: try Self.user(request), device: try Self.device(request)))
        }
        router.put("/_matrix/client/v3/sendToDevice/:type/:txn") { request, context in
            let messages = try await Self.body(request)["messages"]?.objectValue ?? [:]
            var grouped: [UserID: [DeviceID: JSONValue]] = [:]
            for (user, devices) in messages {
                guard let userID = try? UserID(user) else { continue }
                for (device, content) in devices.objectValue ?? [:] { if let id = try? DeviceID(device) { grouped[userID, default: [:]][id] = content } }
            }
            try await state.sendToDevice(
                ToDeviceRequest(eventType: try context.parameters.require("type"), messages: grouped, txnID: try context.parameters.require("txn")),
                as: try Self.user(request), device: try Self.device(request))
            return Self.json([:])
        }
        router.put("/_matrix/client/v3/rooms/:room/send/:type/:txn") { request, context in
            let eventID = try await state.sendRoomEvent(
                try RoomID(try context.parameters.require("room").removingPercentEncoding ?? ""), eventType: try context.parameters.require("type"),
                txnID: try context.parameters.require("txn"), content: try await Self.body(request), as: try Self.user(request), device: try Self.device(request))
            return Self.json(["event_id": .string(eventID.rawValue)])
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in await ready(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "bench.homeserver", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}
