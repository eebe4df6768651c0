import Logging
import MatrixCrypto
import MatrixModels

/// What to do when the homeserver already serves a cross-signing identity for a local user that the
/// database does not hold (the database was lost or reset).
public enum ForeignIdentityPolicy: Sendable {
    /// Stop with ``CrossSigningIdentityError``: replacing it makes every peer warn "identity changed"
    /// (the bot, unless the operator asked for a reset).
    case refuse
    /// Publish a new identity over it, with a warning (puppets: their old device is gone anyway).
    case replace
}

/// A local user's identity could not be published or kept.
public struct CrossSigningIdentityError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The homeserver serves an identity the database does not hold; see ``ForeignIdentityPolicy``.
        case foreignIdentity = "foreign_identity"
        /// The homeserver took the keys but refused the device signature.
        case signatureRefused = "signature_refused"
    }

    public var code: Code
    public var userID: UserID
    public var message: String
    public var description: String { "\(code.rawValue) (\(userID)): \(message)" }
}

extension CryptoEngine {
    /// Gives `userID` (which must have a device) a published cross-signing identity that signs its
    /// current device: creates it (committed before anything is sent), uploads the keys, then the
    /// device's signature, recording each step the homeserver accepted.
    ///
    /// Idempotent and resumable: a restart part-way sends the same keys again (the homeserver answers
    /// 200 to an identical upload) and never makes a second identity.
    ///
    /// - Returns: Whether anything was sent.
    @discardableResult
    public func ensureCrossSigning(_ userID: UserID, onForeignIdentity: ForeignIdentityPolicy) async throws -> Bool {
        if try await store.crossSigningIdentity(userID: userID) == nil {
            let served = try await transport.queryKeys([userID], as: userID)["master_keys"]?[userID.rawValue]
            if served != nil, served != .null {
                switch onForeignIdentity {
                case .refuse:
                    throw CrossSigningIdentityError(
                        code: .foreignIdentity, userID: userID,
                        message: "the homeserver already has a cross-signing identity for this user that the database does not hold")
                case .replace:
                    logger.warning("replacing a cross-signing identity the database did not hold; peers will see \"identity changed\"", metadata: [
                        "user": "\(userID)",
                    ])
                }
            }
            try await step { () -> (CryptoChanges, Void) in
                // Another caller may have made it while we asked the homeserver.
                if try await store.crossSigningIdentity(userID: userID) != nil { return (CryptoChanges(), ()) }
                return (try await machine.createCrossSigningIdentity(userID: userID), ())
            }
        }
        guard let upload = try await locked({ try await machine.pendingCrossSigningUpload(userID: userID) }), !upload.isEmpty else {
            return false
        }
        let (accepted, refused) = try await send(upload)
        try await step { (try await machine.confirmCrossSigningUpload(accepted), ()) }
        logPublished(accepted)
        if let refused { throw refused }
        return true
    }

    /// Sends what `upload` holds: the keys, then the device's signature.
    ///
    /// - Returns: What the homeserver took (to record), and its refusal of the signature when it
    ///   answered with `failures` (the keys were taken: only the signature is retried).
    func send(_ upload: CrossSigningUpload) async throws -> (accepted: CrossSigningUpload, refused: CrossSigningIdentityError?) {
        if let keys = upload.signingKeys { try await transport.uploadSigningKeys(keys, as: upload.userID) }
        guard let signature = upload.deviceSignature else { return (upload, nil) }
        let failures = try await transport.uploadSignatures(signature.body, as: upload.userID)
        guard !failures.isEmpty else { return (upload, nil) }
        var accepted = upload
        accepted.deviceSignature = nil
        return (accepted, CrossSigningIdentityError(
            code: .signatureRefused, userID: upload.userID,
            message: "the homeserver refused the signature of device \(signature.deviceID): \(String(JSONValue.object(failures).serializedString().prefix(300)))"))
    }

    func logPublished(_ accepted: CrossSigningUpload) {
        guard !accepted.isEmpty else { return }
        logger.info("cross-signing identity published", metadata: [
            "user": "\(accepted.userID)", "keys": "\(accepted.signingKeys != nil)", "device": "\(accepted.deviceSignature?.deviceID.rawValue ?? "-")",
        ])
    }
}
