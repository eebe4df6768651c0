import Foundation
import MatrixModels
import Olm

/// The crypto engine's front door: owns the Olm state of every local device (bot and puppets) and is
/// driven by inputs, returning changes to persist and requests to send. It performs no I/O itself
/// beyond reading its ``CryptoStore``.
///
/// Olm objects live only inside one call: they are unpickled from the store, used, and their new
/// pickles returned in ``CryptoChanges``; so a failed commit leaves nothing stale in memory.
public actor CryptoMachine {
    let store: any CryptoStore
    let cipher: StoreCipher
    let devices: any DeviceDirectory
    let policy: OneTimeKeyPolicy
    let now: @Sendable () -> Date

    public init(
        store: any CryptoStore, cipher: StoreCipher, devices: any DeviceDirectory = EmptyDeviceDirectory(),
        policy: OneTimeKeyPolicy = OneTimeKeyPolicy(), now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.cipher = cipher
        self.devices = devices
        self.policy = policy
        self.now = now
    }

    /// Accounts loaded during one step, so each is unpickled once and saved once.
    final class Scratch {
        var accounts: [UserID: (record: StoredAccount, account: Account)] = [:]
        var groupSessions: [String: (record: StoredInboundGroupSession, session: InboundGroupSession)] = [:]
        var ledgers: [String: ReplayLedger] = [:]
    }

    func loadAccount(_ userID: UserID, into scratch: Scratch) async throws -> (record: StoredAccount, account: Account)? {
        if let loaded = scratch.accounts[userID] { return loaded }
        guard let record = try await store.account(userID: userID) else { return nil }
        let account: Account
        do {
            account = try Account.unpickle(record.pickle, key: cipher.pickleKey)
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "account of \(userID) does not unpickle: \(error.code)")
        }
        scratch.accounts[userID] = (record, account)
        return (record, account)
    }

    /// Pickles every account touched in the step into `changes`.
    func flushAccounts(_ scratch: Scratch, into changes: inout CryptoChanges) throws {
        for (_, entry) in scratch.accounts.sorted(by: { $0.key < $1.key }) {
            var record = entry.record
            record.pickle = try pickle { try entry.account.pickle(key: cipher.pickleKey) }
            changes.accounts.append(record)
        }
    }

    func pickle(_ body: () throws -> String) throws -> String {
        do {
            return try body()
        } catch {
            throw CryptoError(code: .olm, message: "pickling failed: \(error)")
        }
    }
}
