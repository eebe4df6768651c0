import Olm
import Primitives

/// Which libolm object a stored pickle holds: re-encrypting a pickle means unpickling it as that object.
public enum PickledObject: String, Sendable {
    case account, olmSession, inboundGroupSession, outboundGroupSession
}

extension StoreCipher {
    /// What every pickle written under the current key begins with (`sb2:<key id>:`), for queries.
    public var picklePrefix: String { "\(Self.pickleTag):\(current.idText):" }

    /// What every record sealed under the current key begins with (magic ‖ key id), for queries.
    public var sealedPrefix: [UInt8] { Self.sealedMagic + current.id }

    /// The key id a stored pickle names; nil for a version-1 pickle (no key id).
    public static func keyID(ofPickle text: String) -> String? {
        parse(pickle: text).map { String($0.keyID) }
    }

    /// The key id a sealed record names; nil for a version-1 record (no header).
    public static func keyID(ofSealed sealed: [UInt8]) -> String? {
        guard sealed.count >= sealedHeaderByteCount, sealed.starts(with: sealedMagic) else { return nil }
        return Hex.encode(sealed[sealedMagic.count..<(sealedMagic.count + StoreKey.idByteCount)])
    }

    /// The same libolm object, pickled again under the current key (a fresh salt).
    ///
    /// - Throws: What ``unpickle(_:_:)`` throws when no configured key opens `text`.
    public func repickle(_ text: String, as object: PickledObject) throws -> String {
        switch object {
        case .account:
            let account = try unpickle(text) { try Account.unpickle($0, key: $1) }
            return try pickle { try account.pickle(key: $0) }
        case .olmSession:
            let session = try unpickle(text) { try Session.unpickle($0, key: $1) }
            return try pickle { try session.pickle(key: $0) }
        case .inboundGroupSession:
            let session = try unpickle(text) { try InboundGroupSession.unpickle($0, key: $1) }
            return try pickle { try session.pickle(key: $0) }
        case .outboundGroupSession:
            let session = try unpickle(text) { try OutboundGroupSession.unpickle($0, key: $1) }
            return try pickle { try session.pickle(key: $0) }
        }
    }

    /// The same plaintext, sealed again under the current key for the same `context`.
    public func reseal(_ sealed: [UInt8], context: String) throws(CryptoError) -> [UInt8] {
        var plain = try open(sealed, context: context)
        defer { secureWipe(&plain) }
        return try seal(plain, context: context)
    }
}

extension StoreCipher {
    /// Whether a configured key opens `text` as `object` (for `rotate-pickle-key --check`).
    ///
    /// - Throws: What ``unpickle(_:_:)`` throws.
    public func checkUnpickles(_ text: String, as object: PickledObject) throws {
        switch object {
        case .account: _ = try unpickle(text) { try Account.unpickle($0, key: $1) }
        case .olmSession: _ = try unpickle(text) { try Session.unpickle($0, key: $1) }
        case .inboundGroupSession: _ = try unpickle(text) { try InboundGroupSession.unpickle($0, key: $1) }
        case .outboundGroupSession: _ = try unpickle(text) { try OutboundGroupSession.unpickle($0, key: $1) }
        }
    }
}
