import AppService
import Bridge
import HomeserverClient
import MatrixCrypto
import MatrixModels
import SealbridgeConfig
import Store

extension CryptoAssembly {
    /// The self-checks' I/O: the probe goes from the bot's device to itself through masquerading, the
    /// key check is one `/keys/query` of the bot. Neither holds the crypto lock or a database transaction.
    static func selfCheckRunner(
        _ configuration: SealbridgeConfiguration, probes: ToDeviceProbes, engine: CryptoEngine, store: PostgresCryptoStore,
        homeserver: HomeserverClient, bot: UserID
    ) -> SelfCheckRunner {
        var retryOnce = homeserver
        retryOnce.maxAttempts = 2
        let probeClient = retryOnce
        return SelfCheckRunner(
            probes: probes,
            sendProbe: { nonce in
                guard let account = try await store.account(userID: bot), account.deviceKeysUploaded else { return false }
                let message: JSONValue = ["messages": .object([bot.rawValue: .object([account.deviceID.rawValue: ["nonce": .string(nonce)]])])]
                try await probeClient.sendToDevice(
                    eventType: ToDeviceProbes.eventType, txnID: "sealbridge-self-check-\(nonce)", body: message,
                    as: .init(userID: bot, deviceID: account.deviceID))
                return true
            },
            botKeys: {
                guard let account = try await store.account(userID: bot), account.deviceKeysUploaded else { return nil }
                let device = DeviceRef(userID: bot, deviceID: account.deviceID)
                return try await engine.checkLocalDevices([device], as: bot)[device]
            },
            registration: { SelfCheckResult.registration(configuration) },
            timeout: .seconds(Int64(configuration.selfChecks.toDeviceTimeout)))
    }
}
