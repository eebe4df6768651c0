import Olm

/// Something that holds an Ed25519 private key and can sign canonical JSON with it.
///
/// Device keys are signed by the Olm ``Account`` (or a new device's ``NewAccount``); cross-signing keys
/// by ``PkSigning``.
public protocol JSONSigner {
    /// The unpadded base64 Ed25519 signature of `canonicalJSON`.
    func signature(for canonicalJSON: [UInt8]) -> String
}

extension Account: JSONSigner {
    public func signature(for canonicalJSON: [UInt8]) -> String { sign(canonicalJSON) }
}

extension NewAccount: JSONSigner {
    public func signature(for canonicalJSON: [UInt8]) -> String { sign(canonicalJSON) }
}

extension PkSigning: JSONSigner {
    public func signature(for canonicalJSON: [UInt8]) -> String { sign(canonicalJSON) }
}

/// Why a signed JSON object was not accepted.
public struct SignatureError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The object is not a JSON object, or contains floats or out-of-range integers.
        public static let notSignable = Code(rawValue: "not_signable")
        /// No signature by that user and key id.
        public static let missingSignature = Code(rawValue: "missing_signature")
        /// A signature is present but does not verify.
        public static let invalidSignature = Code(rawValue: "invalid_signature")
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Signing and verifying JSON objects as the Matrix spec defines it ("Signing JSON").
///
/// The signature covers the canonical JSON of the object without its `signatures` and `unsigned`
/// members; it is stored at `signatures[user_id][key_id]`, next to any signatures already there.
public enum SignedJSON {
    /// Returns `object` with our signature added under `signatures[userID][keyID]`.
    ///
    /// - Parameters:
    ///   - keyID: The full key id, e.g. `ed25519:DEVICEID` or `ed25519:<master public key>`.
    /// - Throws: `notSignable` unless `object` is a JSON object that has a canonical form.
    public static func sign(
        _ object: JSONValue, userID: UserID, keyID: String, with signer: some JSONSigner
    ) throws(SignatureError) -> JSONValue {
        guard case .object(var members) = object else {
            throw SignatureError(code: .notSignable, message: "only JSON objects can be signed")
        }
        let signature = signer.signature(for: try canonicalBytes(of: object))
        var signatures = members["signatures"]?.objectValue ?? [:]
        var mine = signatures[userID.rawValue]?.objectValue ?? [:]
        mine[keyID] = .string(signature)
        signatures[userID.rawValue] = .object(mine)
        members["signatures"] = .object(signatures)
        return .object(members)
    }

    /// Checks the signature by `userID`'s `keyID` over `object` with `publicKey` (unpadded base64 Ed25519).
    ///
    /// - Throws: `missingSignature`, `invalidSignature`, or `notSignable`.
    public static func verify(
        _ object: JSONValue, userID: UserID, keyID: String, publicKey: String
    ) throws(SignatureError) {
        guard let signature = object["signatures"]?[userID.rawValue]?[keyID]?.stringValue else {
            throw SignatureError(code: .missingSignature, message: "no signature by \(userID) with \(keyID)")
        }
        let message = try canonicalBytes(of: object)
        do {
            try Utility.verifyEd25519(key: publicKey, message: message, signature: signature)
        } catch {
            throw SignatureError(code: .invalidSignature, message: "signature by \(userID) with \(keyID) does not verify (\(error.code))")
        }
    }

    /// The bytes a signature covers: canonical JSON without `signatures` and `unsigned`.
    static func canonicalBytes(of object: JSONValue) throws(SignatureError) -> [UInt8] {
        guard object.objectValue != nil else {
            throw SignatureError(code: .notSignable, message: "only JSON objects carry signatures")
        }
        do {
            return try CanonicalJSON.encode(CanonicalJSON.removingSignaturesAndUnsigned(object))
        } catch {
            throw SignatureError(code: .notSignable, message: "\(error)")
        }
    }
}
