import Bridge
import HomeserverClient
import Logging
import MatrixModels
import ServiceLifecycle

/// Gives the bot its device, published keys and (with cross-signing on) its published identity at
/// startup, retrying while the homeserver is not reachable yet (it may start after us), then stays
/// idle until shutdown.
///
/// Two failures are fatal, because retrying cannot help: the homeserver serving a cross-signing
/// identity for the bot that the database does not hold (a lost or reset database; replacing it would
/// make every user's client warn "identity changed"), and a homeserver that demands interactive auth
/// for an appservice's cross-signing keys. The daemon stops and says how to go on.
struct BotDeviceService: Service {
    let engine: CryptoEngine
    let userID: UserID
    let deviceID: DeviceID
    let displayName: String
    /// What to do about a foreign identity; nil: cross-signing off.
    let identityPolicy: ForeignIdentityPolicy?
    let logger: Logger

    func run() async throws {
        do {
            try await publish()
        } catch is CancellationError {
        }
        try? await gracefulShutdown()
    }

    private func publish() async throws {
        try await cancelWhenGracefulShutdown {
            var delay = Duration.seconds(1)
            while true {
                do {
                    let device = try await engine.ensureDevice(userID, deviceID: deviceID, displayName: displayName)
                    if let identityPolicy { try await engine.ensureCrossSigning(userID, onForeignIdentity: identityPolicy) }
                    logger.info("bot device ready", metadata: [
                        "user": "\(userID)", "device": "\(device)", "cross_signed": "\(identityPolicy != nil)",
                    ])
                    return
                } catch is CancellationError {
                    return
                } catch let error as CrossSigningIdentityError where error.code == .foreignIdentity {
                    logger.critical("the homeserver has a cross-signing identity for the bot that the database does not hold", metadata: [
                        "user": "\(userID)",
                    ])
                    throw DaemonError(code: .identity, message: Self.foreignIdentityAdvice(userID))
                } catch let error as CrossSigningAuthRequired {
                    // Retrying cannot help: the homeserver's policy must change, or cross-signing go off.
                    throw DaemonError(code: .configuration, message: error.description)
                } catch {
                    logger.warning("bot device not ready; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(60))
                }
            }
        }
    }

    static func foreignIdentityAdvice(_ bot: UserID) -> String {
        """
        the homeserver already holds a cross-signing identity for \(bot) that this database does not (was the database \
        lost or reset?). Refusing to replace it: every user would see "identity changed" for the bot. Either restore the \
        same identity from secret storage (encryption.recovery_key_file), or start once with `sealbridge run --reset-identity` \
        to publish a new one on purpose.
        """
    }
}
