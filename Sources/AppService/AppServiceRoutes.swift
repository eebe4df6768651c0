import Foundation
import Hummingbird
import Logging
import MatrixModels
import NIOCore

/// What the appservice endpoints need from the rest of the daemon.
public struct AppServiceEndpoints: Sendable {
    /// The homeserver's token (`hs_token`), required on every `/_matrix/app` call.
    public var hsToken: String
    /// Largest transaction body accepted, in bytes.
    public var maxBodySize: Int
    public var processor: any TransactionProcessing
    public var queries: any AppServiceQueries
    /// What `/health` says: 200 `ok` (or `degraded`, see ``degraded``), or 503 `standby` / `unavailable`.
    public var health: @Sendable () async -> HealthStatus
    /// Prometheus text for `/metrics`; nil disables the endpoint.
    public var metrics: (@Sendable () -> [UInt8])?
    /// When set, `/metrics` requires this bearer token (`metrics.token`).
    public var metricsToken: String?
    /// Told when each transaction starts and ends (the watchdog's view of the pipeline).
    public var heartbeat: PipelineHeartbeat?
    /// Records a transaction whose body is over ``maxBodySize`` (txn id, size in bytes), which is then
    /// answered 200 unprocessed: a 413 would be retried forever and stop every room. nil: 413.
    public var oversized: (@Sendable (_ txnID: String, _ size: Int) async throws -> Void)?
    /// Why the daemon is degraded (failed self-checks, one line each); `/health` says `degraded` with
    /// these reasons, still 200 (a standby would not do better). nil or empty: not degraded.
    public var degraded: (@Sendable () async -> [String])?

    public init(
        hsToken: String, maxBodySize: Int = 128 * 1024 * 1024, processor: any TransactionProcessing,
        queries: any AppServiceQueries = NoOnDemandProvisioning(),
        health: @escaping @Sendable () async -> HealthStatus, metrics: (@Sendable () -> [UInt8])? = nil, heartbeat: PipelineHeartbeat? = nil,
        oversized: (@Sendable (_ txnID: String, _ size: Int) async throws -> Void)? = nil, metricsToken: String? = nil
    ) {
        self.oversized = oversized
        self.metricsToken = metricsToken
        self.hsToken = hsToken
        self.maxBodySize = maxBodySize
        self.processor = processor
        self.queries = queries
        self.health = health
        self.metrics = metrics
        self.heartbeat = heartbeat
    }
}

extension AppServiceEndpoints {
    /// Adds the appservice API (current and legacy unprefixed paths), `/health` and `/metrics` to `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("health") { _, _ in
            let status = await health()
            var body: JSONValue = ["status": .string(status.rawValue)]
            if status == .ok, let reasons = await degraded?(), !reasons.isEmpty {
                body = ["status": "degraded", "reasons": .array(reasons.map { .string($0) })]
            }
            return Response(
                status: status == .ok ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
        }
        if let metrics {
            Self.registerMetrics(metrics, token: metricsToken, on: router)
        }
        let auth = HomeserverAuthMiddleware<Context>(hsToken: hsToken)
        for prefix in ["_matrix/app/v1", ""] {
            let group = prefix.isEmpty ? router.group().add(middleware: auth) : router.group(RouterPath(prefix)).add(middleware: auth)
            group.put("transactions/:txnId") { request, context in try await transaction(request, context) }
            group.get("users/:userId") { _, context in try await user(context) }
            group.get("rooms/:alias") { _, context in try await room(context) }
            if !prefix.isEmpty {
                group.post("ping") { request, _ in try await ping(request) }
            }
        }
    }

    func transaction(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let txnID = try context.parameters.require("txnId")
        var logger = context.logger
        logger[metadataKey: "txn_id"] = "\(txnID)"
        let start = ContinuousClock.now
        let body: [UInt8]
        do {
            body = Array(try await collectBody(request).readableBytesView)
        } catch let error as MatrixHTTPError where error.errcode == "M_TOO_LARGE" {
            guard let oversized else { throw error }
            let size = try await drainedSize(request)
            logger.critical(
                "transaction body over appservice.max_body_size: answered 200 unprocessed (a 413 would stop every room); raise max_body_size",
                metadata: ["size": "\(size)", "limit": "\(maxBodySize)"])
            do {
                try await oversized(txnID, size)
            } catch {
                logger.error("could not record the oversized transaction; the homeserver will retry it", metadata: ["error": "\(error)"])
                throw MatrixHTTPError.unknown("Transaction body over max_body_size could not be recorded; retry later")
            }
            return Self.emptyObject()
        }
        let decoded: AppserviceTransaction
        do {
            decoded = try AppserviceTransaction.decode(body)
        } catch {
            logger.warning("refused transaction body", metadata: ["reason": "\(error.message)"])
            throw error.kind == .notJSON ? MatrixHTTPError.notJSON(error.message) : MatrixHTTPError.badJSON(error.message)
        }
        TransactionPhase.decode.record(since: start)
        logger[metadataKey: "events"] = "\(decoded.events.count)"
        logger[metadataKey: "to_device"] = "\(decoded.toDevice.count)"
        let token = await heartbeat?.begin()
        defer { if let token, let heartbeat { Task { await heartbeat.end(token) } } }
        do {
            let outcome = try await processor.process(txnID: txnID, body: body, decoded, logger: logger)
            logger.debug("transaction answered", metadata: ["outcome": "\(outcome)"])
        } catch {
            // The last resort: the homeserver retries with the events only, so this loses its to-device part.
            logger.error("transaction failed; the homeserver will retry it without its to-device messages", metadata: ["error": "\(error)"])
            throw MatrixHTTPError.unknown("Transaction could not be committed; retry later")
        }
        return Self.emptyObject()
    }

    func collectBody(_ request: Request) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
            throw MatrixHTTPError.tooLarge(limit: maxBodySize)
        }
        do {
            return try await request.body.collect(upTo: maxBodySize)
        } catch is NIOTooManyBytesError {
            throw MatrixHTTPError.tooLarge(limit: maxBodySize)
        }
    }

    /// Reads and discards what is left of a body, to answer the request; returns its total size.
    func drainedSize(_ request: Request) async throws -> Int {
        if let length = request.headers[.contentLength].flatMap(Int.init) {
            for try await _ in request.body {}
            return length
        }
        var size = 0
        for try await buffer in request.body { size += buffer.readableBytes }
        return size
    }

    func user(_ context: some RequestContext) async throws -> Response {
        try await query(context, parameter: "userId", kind: "user id", parse: UserID.init) { try await queries.userExists($0) }
    }

    func room(_ context: some RequestContext) async throws -> Response {
        try await query(context, parameter: "alias", kind: "room alias", parse: RoomAlias.init) { try await queries.roomAliasExists($0) }
    }

    /// Answers a homeserver existence query: 200 `{}` if `exists`, else 404 `M_NOT_FOUND`.
    func query<ID>(
        _ context: some RequestContext, parameter: String, kind: String,
        parse: (String) throws(IdentifierError) -> ID, exists: (ID) async throws -> Bool
    ) async throws -> Response {
        let raw = try context.parameters.require(parameter)
        guard let id = try? parse(raw.removingPercentEncoding ?? raw) else { throw MatrixHTTPError.badJSON("not a \(kind)") }
        guard try await exists(id) else { throw MatrixHTTPError.notFound("No such \(kind)") }
        return Self.emptyObject()
    }

    /// `POST /_matrix/app/v1/ping`: the homeserver checks that it can reach us (after a client asked it to).
    func ping(_ request: Request) async throws -> Response {
        let body = try await collectBody(request)
        guard (try? JSONValue.parse(body.readableBytesView))?.objectValue != nil else {
            throw MatrixHTTPError.notJSON("ping body must be a JSON object")
        }
        return Self.emptyObject()
    }

    /// `GET /metrics` (Prometheus text), behind `token` when one is set: also for a listener of its own.
    public static func registerMetrics<Context: RequestContext>(
        _ metrics: @escaping @Sendable () -> [UInt8], token: String?, on router: Router<Context>
    ) {
        let handler: @Sendable (Request, Context) async throws -> Response = { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics())))
        }
        if let token {
            router.group().add(middleware: HomeserverAuthMiddleware<Context>(hsToken: token, name: "metrics", acceptsQueryToken: false))
                .get("metrics", use: handler)
        } else {
            router.get("metrics", use: handler)
        }
    }

    static func emptyObject() -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
    }
}

/// The daemon's state as `/health` reports it.
public enum HealthStatus: String, Sendable {
    /// Serving: the database answers and this instance owns the crypto state.
    case ok
    /// Another instance owns the crypto state (or this one is taking it back): transactions sent here
    /// are held and journaled, not processed. A load balancer should route to the instance that says ok.
    case standby
    /// The database does not answer.
    case unavailable
}
