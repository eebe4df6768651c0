import AppService
import Bridge
import Foundation
import HomeserverClient
import Hummingbird
import Logging
import MatrixCrypto
import MatrixModels
import NIOCore

/// The bridge API: how the bot/bridge logic talks to Sealbridge in plaintext, on the daemon's
/// listener under `/_sealbridge/v1`, guarded by its own bearer token (compared in constant time).
/// docs/bridge-api.md documents every endpoint and the delivery JSON.
public struct BridgeAPIEndpoints: Sendable {
    public var token: String
    public var actions: BridgeActions
    public var outbox: Outbox
    /// False when a webhook consumes the outbox: two consumers would acknowledge each other's deliveries.
    public var longPoll: Bool
    /// Largest request body accepted, in bytes.
    public var maxBodySize = 1024 * 1024

    public init(token: String, actions: BridgeActions, outbox: Outbox, longPoll: Bool = true) {
        self.token = token
        self.actions = actions
        self.outbox = outbox
        self.longPoll = longPoll
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        let api = router.group("_sealbridge/v1").add(middleware: HomeserverAuthMiddleware<Context>(hsToken: token, name: "bridge API", acceptsQueryToken: false))
        api.put("rooms/:roomId/send/:type/:txnId") { request, context in try await mapped(context) { try await send(request, context) } }
        api.post("rooms") { request, context in try await mapped(context) { try await createRoom(request, context) } }
        api.post("rooms/:roomId/join") { request, context in try await mapped(context) { try await membership(request, context, join: true) } }
        api.post("rooms/:roomId/leave") { request, context in try await mapped(context) { try await membership(request, context, join: false) } }
        api.put("puppets/:userId") { request, context in try await mapped(context) { try await puppet(request, context) } }
        api.get("events") { request, context in try await mapped(context) { try await events(request, context) } }
    }

    /// `PUT /rooms/{roomId}/send/{type}/{txnId}?as=@user`: idempotent on (`as`, `txnId`).
    func send(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let roomID = try Self.parse(context, "roomId", RoomID.init)
        let type = try Self.parameter(context, "type")
        let txnID = try Self.parameter(context, "txnId")
        let content = try await body(request)
        let eventID = try await actions.send(roomID: roomID, type: type, txnID: txnID, content: content, as: try sender(request))
        return Self.json(["event_id": .string(eventID.rawValue)])
    }

    /// `POST /rooms?as=@user` with `{"name", "invite": [...], "encrypted": true, "is_direct": false}`.
    func createRoom(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let content = try await body(request)
        var invite: [UserID] = []
        for value in content["invite"]?.arrayValue ?? [] {
            guard let text = value.stringValue, let user = try? UserID(text) else { throw Self.bad("invite must list user ids") }
            invite.append(user)
        }
        let roomID = try await actions.createRoom(
            as: try sender(request), name: content["name"]?.stringValue, invite: invite,
            encrypted: content["encrypted"]?.boolValue ?? true, isDirect: content["is_direct"]?.boolValue ?? false)
        return Self.json(["room_id": .string(roomID.rawValue)])
    }

    /// `POST /rooms/{roomId}/join?as=` and `/leave?as=`.
    func membership(_ request: Request, _ context: some RequestContext, join: Bool) async throws -> Response {
        let roomID = try Self.parse(context, "roomId", RoomID.init)
        let user = try sender(request)
        if join { try await actions.join(roomID, as: user) } else { try await actions.leave(roomID, as: user) }
        return Self.json([:])
    }

    /// `PUT /puppets/{userId}` with `{"displayname"}`: registered, named, and given a device with keys.
    func puppet(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let user = try Self.parse(context, "userId", UserID.init)
        let content = try await body(request)
        let device = try await actions.ensurePuppet(user, displayName: content["displayname"]?.stringValue)
        return Self.json(["user_id": .string(user.rawValue), "device_id": .string(device.rawValue)])
    }

    /// `GET /events?since=N&timeout=ms&limit=n`: deliveries after `since`, waiting up to `timeout` for
    /// the first. Passing `since` acknowledges every delivery up to it; unacknowledged ones come again.
    func events(_ request: Request, _ context: some RequestContext) async throws -> Response {
        guard longPoll else {
            throw MatrixHTTPError(.conflict, "M_UNKNOWN", "deliveries go to the configured webhook (bridge_api.webhook.url)")
        }
        let query = request.uri.queryParameters
        guard let since = Int64(query["since"].map(String.init) ?? "0"), since >= 0 else { throw Self.bad("since must be a batch token from next_batch") }
        guard let timeout = Int(query["timeout"].map(String.init) ?? "0"), (0...120_000).contains(timeout) else {
            throw Self.bad("timeout must be 0–120000 ms")
        }
        guard let limit = Int(query["limit"].map(String.init) ?? "100"), (1...1000).contains(limit) else { throw Self.bad("limit must be 1–1000") }
        let (entries, acknowledged) = try await outbox.poll(since: since, limit: limit, timeout: .milliseconds(timeout))
        return Self.json(["events": .array(entries.map(\.delivery)), "next_batch": .string(String(entries.last?.id ?? acknowledged))])
    }

    // MARK: Helpers

    /// The `as` query parameter (default: the bot).
    func sender(_ request: Request) throws -> UserID {
        guard let raw = request.uri.queryParameters["as"].map(String.init) else { return actions.users.bot }
        guard let user = try? UserID(raw.removingPercentEncoding ?? raw) else { throw Self.bad("as must be a user id") }
        return user
    }

    func body(_ request: Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodySize)
        } catch is NIOTooManyBytesError {
            throw MatrixHTTPError(.contentTooLarge, "M_TOO_LARGE", "Body larger than \(maxBodySize) bytes")
        }
        if buffer.readableBytes == 0 { return [:] }
        guard let value = try? JSONValue.parse(buffer.readableBytesView), value.objectValue != nil else {
            throw MatrixHTTPError(.badRequest, "M_NOT_JSON", "Body must be a JSON object")
        }
        return value
    }

    static func parameter(_ context: some RequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }

    static func parse<ID>(_ context: some RequestContext, _ name: String, _ make: (String) throws(IdentifierError) -> ID) throws -> ID {
        let text = try parameter(context, name)
        guard let id = try? make(text) else { throw bad("\(name) is not valid: \(text)") }
        return id
    }

    static func bad(_ message: String) -> MatrixHTTPError { MatrixHTTPError(.badRequest, "M_INVALID_PARAM", message) }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    /// Turns refusals from the bridge and the homeserver into Matrix errors; anything else is logged
    /// and answered 500 without detail.
    func mapped(_ context: some RequestContext, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as MatrixHTTPError {
            throw error
        } catch let error as BridgeError {
            let status: HTTPResponse.Status = switch error.code {
            case .notLocalUser: .forbidden
            case .sendInProgress: .conflict
            case .badRequest: .badRequest
            }
            throw MatrixHTTPError(status, error.code.rawValue, error.message)
        } catch let error as CryptoError {
            // E.g. a room without m.room.encryption state the machine could read, or no device for the sender.
            throw MatrixHTTPError(.internalServerError, "M_UNKNOWN", "encryption: \(error.message)")
        } catch where isDatabaseUnavailable(error) {
            throw MatrixHTTPError(
                .serviceUnavailable, "M_UNKNOWN", "the database is unavailable or this instance is on standby (another owns the crypto state); retry later")
        } catch let error as HomeserverError {
            guard error.status >= 400 else { throw MatrixHTTPError(.badGateway, "M_UNKNOWN", "homeserver: \(error.message)") }
            throw MatrixHTTPError(.init(code: error.status), error.errcode ?? "M_UNKNOWN", "homeserver: \(error.message)")
        } catch {
            context.logger.error("bridge API request failed", metadata: ["error": "\(error)"])
            throw MatrixHTTPError(.internalServerError, "M_UNKNOWN", "internal error; see Sealbridge's log")
        }
    }
}
