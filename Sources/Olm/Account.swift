internal import COlm
import Foundation

/// An Olm account: a device's identity keys, its one-time keys and its fallback key.
///
/// Non-Sendable on purpose: libolm objects are not thread-safe, so an account is owned by one actor and
/// crosses isolation only as a pickle. The C memory is cleared and freed in `deinit`.
public final class Account {
    // Both `var` only so that ``adoptState(of:)`` can swap in a re-built account (see
    // Account+SplicedOneTimeKeys.swift); nothing else reassigns them.
    private(set) var memory: OlmMemory
    private(set) var pointer: OpaquePointer
    /// True once anything changed the account since it was created or unpickled (keys generated,
    /// published, removed, a fallback key made or forgotten): an account without changes pickles to
    /// what was stored, so it need not be written back. Set by every mutating method of this wrapper.
    public internal(set) var hasChanges = false

    private init() {
        memory = OlmMemory(size: olm_account_size())
        pointer = olm_account(memory.raw)
    }

    deinit {
        memory.release { _ = olm_clear_account(pointer) }
    }

    var lastError: OlmErrorCode { olm_account_last_error_code(pointer) }

    /// Takes `other`'s libolm state and gives it ours, which `other`'s `deinit` then clears and frees.
    ///
    /// Swaps the memory rather than copying it: a libolm account holds pointers into itself.
    func adoptState(of other: Account) {
        hasChanges = true
        swap(&memory, &other.memory)
        swap(&pointer, &other.pointer)
    }

    /// Creates a new account with fresh identity keys.
    public static func create() throws(OlmError) -> Account {
        let account = Account()
        let result = OlmRandom.withBytes(olm_create_account_random_length(account.pointer)) {
            olm_create_account(account.pointer, $0, $1)
        }
        try OlmError.check(result, account.lastError, "olm_create_account")
        account.hasChanges = true
        return account
    }

    /// Restores an account from ``pickle(key:)`` output.
    ///
    /// - Throws: `badAccountKey` for a wrong key, `corruptedPickle`/`invalidBase64` for damaged input.
    public static func unpickle(_ pickle: String, key: PickleKey) throws(OlmError) -> Account {
        let account = Account()
        try Pickling.unpickle(pickle, key: key, operation: "olm_unpickle_account", lastError: { account.lastError }) {
            olm_unpickle_account(account.pointer, $0, $1, $2, $3)
        }
        return account
    }

    /// The account's full state, encrypted with `key`, as base64.
    public func pickle(key: PickleKey) throws(OlmError) -> String {
        try Pickling.pickle(
            key: key, length: olm_pickle_account_length(pointer), operation: "olm_pickle_account",
            lastError: { lastError }
        ) { olm_pickle_account(pointer, $0, $1, $2, $3) }
    }

    /// The account's public identity keys.
    public var identityKeys: IdentityKeys {
        let (bytes, result) = OlmBytes.output(capacity: olm_account_identity_keys_length(pointer)) {
            olm_account_identity_keys(pointer, $0, $1)
        }
        // Cannot fail: the buffer has the length libolm asked for.
        precondition(result != olm_error(), "olm_account_identity_keys failed")
        guard let keys = try? JSONDecoder().decode(IdentityKeys.self, from: Data(bytes)) else {
            preconditionFailure("libolm returned identity keys that are not the documented JSON")
        }
        return keys
    }

    /// Signs `message` with the account's Ed25519 key.
    ///
    /// - Returns: The unpadded base64 signature.
    public func sign(_ message: some Collection<UInt8>) -> String {
        let (bytes, result) = OlmBytes.withMutableCopy(of: message) { input, count in
            OlmBytes.output(capacity: olm_account_signature_length(pointer)) {
                olm_account_sign(pointer, input, count, $0, $1)
            }
        }
        precondition(result != olm_error(), "olm_account_sign failed")
        return OlmBytes.string(bytes)
    }

    /// Signs the UTF-8 bytes of `message`.
    public func sign(_ message: String) -> String { sign(message.utf8) }
}
