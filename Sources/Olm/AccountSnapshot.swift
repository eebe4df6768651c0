import Primitives

/// An account's libolm pickle opened into its plaintext: read and edited by Sealbridge without an
/// unpickled libolm account.
///
/// libolm's own pickle and unpickle of an account with 50 one-time keys cost ~0.2 ms each here (its
/// AES and SHA-256 are portable C); confirming a new device's first upload went through both just to
/// flip the keys' published flags. The envelope is libolm's (``LibolmPickleEnvelope``, through
/// libcrypto), the body's layout libolm 3.2's (``AccountPickleBody``), so what ``seal(key:)`` returns
/// unpickles in libolm to the account this describes. Only version 4 bodies are opened; anything else is
/// left to libolm.
///
/// Non-Sendable: it holds the account's private keys, wiped when it goes.
public final class AccountSnapshot {
    private var body: [UInt8]
    private let layout: AccountPickleBody

    /// Takes `body` (laid out as `layout` says) as its own: the only other reference must be dropped
    /// unwiped, as wiping a shared array would copy it first.
    init(owning body: [UInt8], layout: AccountPickleBody) {
        self.body = body
        self.layout = layout
    }

    deinit { secureWipe(&body) }

    /// Opens a libolm account pickle sealed with `key`.
    ///
    /// - Returns: nil for a pickle body of a version this code does not know (the caller unpickles it with libolm).
    /// - Throws: `badAccountKey` (wrong key or damaged), `invalidBase64`, `corruptedPickle`.
    public static func open(_ pickle: String, key: PickleKey) throws(OlmError) -> AccountSnapshot? {
        try taking(try LibolmPickleEnvelope.open(pickle, key: key))
    }

    /// A snapshot that owns `body`; `body` is wiped instead when it is not a version 4 body (nil) or its
    /// lengths do not add up (`corruptedPickle`).
    static func taking(_ body: consuming [UInt8]) throws(OlmError) -> AccountSnapshot? {
        var body = body
        let layout: AccountPickleBody?
        do {
            layout = try AccountPickleBody(body)
        } catch {
            secureWipe(&body)
            throw error
        }
        guard let layout else {
            secureWipe(&body)
            return nil
        }
        return AccountSnapshot(owning: body, layout: layout)
    }

    /// The account as a libolm pickle sealed with `key`, for `Account.unpickle` or the store.
    public func seal(key: PickleKey) throws(OlmError) -> String {
        try LibolmPickleEnvelope.seal(body, key: key)
    }

    /// What `Account.markKeysAsPublished()` does: every one-time key and the current fallback key published.
    public func markKeysAsPublished() {
        layout.markKeysAsPublished(in: &body)
    }

    /// The account's public identity keys.
    public var identityKeys: IdentityKeys {
        IdentityKeys(
            curve25519: Base64.encodeUnpadded(Array(body[AccountPickleBody.curve25519PublicKey])),
            ed25519: Base64.encodeUnpadded(Array(body[AccountPickleBody.ed25519PublicKey])))
    }

    /// The one-time keys not yet published, sorted by key id (as `Account.unpublishedOneTimeKeys`).
    public var unpublishedOneTimeKeys: [OneTimeKey] {
        layout.oneTimeKeys(in: body).filter { !$0.published }.map(\.oneTimeKey).sorted { $0.keyID < $1.keyID }
    }

    /// The current fallback key if it is not published yet (as `Account.unpublishedFallbackKey`).
    public var unpublishedFallbackKey: OneTimeKey? {
        layout.fallbackKeys(in: body).first.flatMap { $0.published ? nil : $0.oneTimeKey }
    }
}
