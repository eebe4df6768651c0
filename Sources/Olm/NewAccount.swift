import Primitives

/// A new device's account made by Sealbridge, not by libolm: identity keys, a fallback key and
/// one-time keys written straight into a libolm 3.2 account pickle body (``AccountSnapshot``).
///
/// A new puppet's account was libolm's `olm_create_account`, `generate_fallback_key`, the one-time-key
/// splice (a pickle and an unpickle) and a pickle for the store: ~1 ms of libolm per puppet beside the
/// signatures, on the path that provisioning's 150 puppets/s target runs on (issue 12 point 4). Here the
/// Curve25519 keys come from libcrypto's X25519 and the Ed25519 key from its seed, kept expanded as
/// libolm keeps it (SHA-512 of the seed, clamped: RFC 8032 §5.1.5); the keys are signed by a libolm
/// ``PkSigning`` made from the same seed, which yields the signatures the account itself would (Ed25519 is
/// deterministic). Ids and order are libolm's for `create`, `generate_fallback_key`,
/// `generate_one_time_keys(count)`: the fallback key 1, the one-time keys 2… newest first. Checked against
/// libolm by `AccountSnapshotTests`.
///
/// Non-Sendable: it holds private keys.
public final class NewAccount {
    /// libolm's `MAX_ONE_TIME_KEYS`: an account keeps at most this many one-time keys.
    public static let maxNumberOfOneTimeKeys = 100

    /// The account's state, to seal for the store and to read the keys to upload from.
    public let snapshot: AccountSnapshot
    private let signer: PkSigning

    private init(snapshot: AccountSnapshot, signer: PkSigning) {
        self.snapshot = snapshot
        self.signer = signer
    }

    /// A fresh account with a fallback key and `oneTimeKeys` one-time keys (beyond
    /// ``maxNumberOfOneTimeKeys`` the oldest go, as in libolm).
    public static func create(oneTimeKeys: Int) throws(OlmError) -> NewAccount {
        var seed = [UInt8](repeating: 0, count: 32)
        defer { secureWipe(&seed) }
        seed.withUnsafeMutableBytes { OlmRandom.fill($0) }
        let signer = try PkSigning(seed: seed)
        guard let signingKey = try? Base64.decode(signer.publicKey), signingKey.count == 32 else {
            throw OlmError(code: .unknown, operation: "Ed25519 public key of a new account")
        }
        let keyEntry = AccountPickleBody.keyEntryByteCount
        // version, identity keys, no one-time keys, one fallback key (id 1, unpublished), id counter 1.
        var base = [UInt8](repeating: 0, count: AccountPickleBody.headerByteCount + 4 + 1 + keyEntry + 4)
        defer { secureWipe(&base) }
        let fallback = AccountPickleBody.headerByteCount + 4
        let outcome: Result<Void, OlmError> = base.withUnsafeMutableBytes { out in Result { () throws(OlmError) in
            AccountPickleBody.write(AccountPickleBody.supportedVersion, to: out, at: 0)
            out[AccountPickleBody.ed25519PublicKey].copyBytes(from: signingKey)
            seed.withUnsafeBytes { SHA512.hash($0, into: UnsafeMutableRawBufferPointer(rebasing: out[36..<100])) }
            out[36] &= 248
            out[67] &= 63
            out[67] |= 64
            try AccountPickleBody.writeRandomKeyPair(
                publicKey: UnsafeMutableRawBufferPointer(rebasing: out[AccountPickleBody.curve25519PublicKey]),
                privateKey: UnsafeMutableRawBufferPointer(rebasing: out[132..<164]))
            out[fallback] = 1
            AccountPickleBody.write(1, to: out, at: fallback + 1)
            try AccountPickleBody.writeRandomKeyPair(
                publicKey: UnsafeMutableRawBufferPointer(rebasing: out[(fallback + 6)..<(fallback + 38)]),
                privateKey: UnsafeMutableRawBufferPointer(rebasing: out[(fallback + 38)..<(fallback + 70)]))
            AccountPickleBody.write(1, to: out, at: fallback + 1 + keyEntry)
        } }
        try outcome.get()
        guard let layout = try AccountPickleBody(base) else { throw OlmError(code: .unknown, operation: "lay out a new account") }
        let body = try layout.inserting(oneTimeKeys, into: base, limit: maxNumberOfOneTimeKeys, writeKeyPair: AccountPickleBody.writeRandomKeyPair)
        guard let snapshot = try AccountSnapshot.taking(consume body) else { throw OlmError(code: .unknown, operation: "lay out a new account") }
        return NewAccount(snapshot: snapshot, signer: signer)
    }

    /// Signs `message` with the account's Ed25519 key, as `Account.sign` would.
    ///
    /// - Returns: The unpadded base64 signature.
    public func sign(_ message: some Collection<UInt8>) -> String { signer.sign(message) }

    public var identityKeys: IdentityKeys { snapshot.identityKeys }
    public var unpublishedOneTimeKeys: [OneTimeKey] { snapshot.unpublishedOneTimeKeys }
    public var unpublishedFallbackKey: OneTimeKey? { snapshot.unpublishedFallbackKey }
}
