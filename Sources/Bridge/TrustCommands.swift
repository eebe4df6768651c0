import MatrixCrypto
import MatrixModels

/// `whois @user` and `trust @user FINGERPRINT`: how Sealbridge judges another user's devices by
/// cross-signing, and an admin's vouch for a user's master key.
public struct TrustCommands: Sendable {
    let engine: CryptoEngine
    /// Who queries keys for `whois` (the bot).
    let requester: UserID

    public init(engine: CryptoEngine, requester: UserID) {
        self.engine = engine
        self.requester = requester
    }

    public var commands: [ManagementCommand] {
        [
            ManagementCommand(name: "whois", help: "whois @user: their devices, trust levels and master key fingerprint") { arguments, _ in
                await whois(arguments)
            },
            ManagementCommand(
                name: "trust",
                help: "trust @user FINGERPRINT: vouch for their master key (compare it with them out of band first)"
            ) { arguments, _ in
                await trust(arguments)
            },
        ]
    }

    func whois(_ arguments: [String]) async -> CommandReply {
        guard arguments.count == 1, let user = try? UserID(arguments[0]) else { return CommandReply(body: "usage: whois @user:server") }
        do {
            let (devices, identity) = try await engine.whois(user, as: requester)
            var rows: [(String, String)] = [("master key", Self.identityLine(identity))]
            rows += devices.map { device, trust in (device.deviceID.rawValue, trust.rawValue) }
            if devices.isEmpty { rows.append(("devices", "none known (no shared encrypted room, or none published)")) }
            return CommandReply.table(title: "\(user)", rows: rows)
        } catch {
            return CommandReply(body: "Could not read the devices of \(user): \(error)")
        }
    }

    func trust(_ arguments: [String]) async -> CommandReply {
        guard arguments.count >= 2, let user = try? UserID(arguments[0]) else {
            return CommandReply(body: "usage: trust @user:server FINGERPRINT (as whois shows it; spaces are ignored)")
        }
        do {
            switch try await engine.trust(user, fingerprint: arguments.dropFirst().joined()) {
            case .success(let (identity, signed)):
                let published = signed ? " The bot's user-signing key signed it on the homeserver." : ""
                return CommandReply(
                    body: "Trusted \(user)'s master key \(MasterKeyFingerprint.grouped(identity.masterKey ?? "")): the devices it cross-signs are now verified.\(published)")
            case .failure(.noIdentity):
                return CommandReply(body: "\(user) has no cross-signing identity Sealbridge knows of; nothing changed. Run whois \(user) to see what is known.")
            case .failure(.mismatch):
                return CommandReply(body: "That is not \(user)'s current master key; nothing changed. Compare it again with whois \(user).")
            }
        } catch {
            return CommandReply(body: "Could not record the trust: \(error)")
        }
    }

    /// The master key fingerprint and whether it is the pinned one, trusted, or changed.
    static func identityLine(_ identity: StoredUserIdentity?) -> String {
        guard let identity else { return "none (not cross-signed)" }
        guard let master = identity.masterKey else {
            return "none published now (pinned was \(MasterKeyFingerprint.grouped(identity.pinnedMasterKey)))"
        }
        let state = identity.isVerified ? "trusted by an admin"
            : identity.identityChanged ? "CHANGED since pinned (was \(MasterKeyFingerprint.grouped(identity.pinnedMasterKey)))" : "pinned"
        return "\(MasterKeyFingerprint.grouped(master)) (\(state))"
    }
}
