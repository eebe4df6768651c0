import AppService
import Bridge
import BridgeAPI
import Hummingbird
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Prometheus
import SealbridgeConfig

/// Builds the HTTP application for the appservice API; the daemon and the tests both call this.
///
/// - Parameters:
///   - pipeline: How transactions are processed (journal, lock, quarantine).
///   - bridgeAPI: The bridge API's routes (`/_sealbridge/v1`), served on the same listener; nil when off or
///     on its own listener (``buildBridgeAPIApplication(host:port:bridgeAPI:logger:)``).
///   - metricsRegistry: Rendered at `/metrics` on this listener; nil when metrics are off or on their own listener.
///   - selfChecks: Failed checks make `/health` say `degraded`; `POST /_sealbridge/self-checks` (behind the
///     `hs_token`) runs a round now and answers its report, for `sealbridge doctor`.
public func buildAppServiceApplication(
    configuration: SealbridgeConfiguration, client: PostgresClient, pipeline: TransactionPipeline,
    bridgeAPI: BridgeAPIEndpoints? = nil, metricsRegistry: PrometheusCollectorRegistry?, selfChecks: SelfCheckService? = nil, logger: Logger,
    onServerRunning: @escaping @Sendable () async -> Void = {}
) -> some ApplicationProtocol {
    let router = Router()
    var metrics: (@Sendable () -> [UInt8])?
    if let metricsRegistry { metrics = { metricsRegistry.emitToBuffer() } }
    var endpoints = AppServiceEndpoints(
        hsToken: configuration.appservice.hsToken ?? "",
        maxBodySize: configuration.appservice.maxBodySize,
        processor: pipeline.front,
        health: { [fence = pipeline.fence] in
            guard await client.ping() else { return .unavailable }
            return fence?.owns == false ? .standby : .ok
        },
        metrics: metrics,
        heartbeat: pipeline.heartbeat,
        oversized: pipeline.oversized,
        metricsToken: configuration.metrics.token)
    if let selfChecks {
        endpoints.degraded = { selfChecks.failures }
        router.group("_sealbridge")
            .add(middleware: HomeserverAuthMiddleware(hsToken: configuration.appservice.hsToken ?? "", name: "self-check", acceptsQueryToken: false))
            .post("self-checks") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: await selfChecks.runNow().json.serialized())))
            }
    }
    endpoints.register(on: router)
    bridgeAPI?.register(on: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.appservice.address, port: configuration.appservice.port), serverName: "Sealbridge"),
        onServerRunning: { _ in await onServerRunning() },
        logger: logger)
}

/// A listener that serves only the bridge API (`/_sealbridge/v1`, `bridge_api.listen`), so the bridge
/// logic's port can be bound or firewalled apart from the one the homeserver pushes to.
func buildBridgeAPIApplication(host: String, port: Int, bridgeAPI: BridgeAPIEndpoints, logger: Logger) -> some ApplicationProtocol {
    let router = Router()
    bridgeAPI.register(on: router)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "Sealbridge"), logger: logger)
}

/// A listener that serves only `/metrics`, for operators who keep metrics off the appservice port.
func buildMetricsApplication(host: String, port: Int, registry: PrometheusCollectorRegistry, token: String?, logger: Logger) -> some ApplicationProtocol {
    let router = Router()
    AppServiceEndpoints.registerMetrics({ registry.emitToBuffer() }, token: token, on: router)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
}
