import MatrixModels
import Olm
import Primitives

/// The private half of a cross-signing identity: the 32-byte Ed25519 seeds of its master,
/// self-signing and user-signing keys.
///
/// Kept only sealed at rest (``StoreCipher``) and in secret storage; opened for the duration of one
/// signing. Sendable bytes, so they may cross into the signing call; callers wipe them with
/// ``wipe()`` when done with a copy they own.
public struct CrossSigningSeeds: Sendable, Equatable {
    public var master: [UInt8]
    public var selfSigning: [UInt8]
    public var userSigning: [UInt8]

    /// - Throws: `invalidArgument` unless each seed has `PkSigning.seedByteCount` bytes.
    public init(master: [UInt8], selfSigning: [UInt8], userSigning: [UInt8]) throws(CryptoError) {
        let size = PkSigning.seedByteCount
        guard master.count == size, selfSigning.count == size, userSigning.count == size else {
            throw CryptoError(code: .invalidCrossSigning, message: "cross-signing seeds must be \(size) bytes each")
        }
        self.master = master
        self.selfSigning = selfSigning
        self.userSigning = userSigning
    }

    /// Three fresh seeds from the system CSPRNG.
    public static func generate() -> CrossSigningSeeds {
        // Sizes come from libolm itself, so the initializer cannot refuse them.
        try! CrossSigningSeeds(master: PkSigning.generateSeed(), selfSigning: PkSigning.generateSeed(), userSigning: PkSigning.generateSeed())
    }

    /// The three seeds one after the other: what is sealed at rest.
    var combined: [UInt8] { master + selfSigning + userSigning }

    init(combined: [UInt8]) throws(CryptoError) {
        let size = PkSigning.seedByteCount
        guard combined.count == 3 * size else {
            throw CryptoError(code: .storeCorrupted, message: "sealed cross-signing seeds have the wrong length")
        }
        try self.init(
            master: Array(combined[0..<size]), selfSigning: Array(combined[size..<2 * size]), userSigning: Array(combined[(2 * size)...]))
    }

    /// The public keys the seeds make.
    public func publicKeys() throws(CryptoError) -> CrossSigningPublicKeys {
        try CrossSigningSigners(self).publicKeys
    }

    /// Overwrites the seeds' bytes.
    public mutating func wipe() {
        secureWipe(&master)
        secureWipe(&selfSigning)
        secureWipe(&userSigning)
    }
}

/// The three public Ed25519 keys of a cross-signing identity (unpadded base64).
public struct CrossSigningPublicKeys: Sendable, Hashable {
    public var master: String
    public var selfSigning: String
    public var userSigning: String

    public init(master: String, selfSigning: String, userSigning: String) {
        self.master = master
        self.selfSigning = selfSigning
        self.userSigning = userSigning
    }
}
