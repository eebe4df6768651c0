import MatrixModels
import Olm

extension CryptoMachine {
    /// ``confirmUpload(_:counts:)`` without libolm, when the answer asks for nothing but the published
    /// flags: the server holds at least the policy's target once every key we have is published, and no
    /// old fallback key waits to be forgotten. Then the stored pickle is opened, its keys marked
    /// published, and sealed again (``AccountSnapshot``) — what libolm's unpickle, mark and pickle would
    /// leave, at a tenth of the cost (~0.4 ms of libolm per new puppet under the lock, issue 12 point 4).
    ///
    /// - Returns: The account to commit; nil when the full path is needed (keys to generate, a fallback
    ///   key to forget, device keys still to send, another device's upload, a pickle of another version
    ///   or one that does not open — the full path reports that as every reader of the account does).
    func confirmInPickle(_ upload: KeysUpload, counts: [String: Int]) async throws -> CryptoChanges? {
        guard policy.keysToGenerate(serverCount: counts, unpublished: 0) == 0,
            var record = try await store.account(userID: upload.userID), record.deviceID == upload.deviceID,
            record.fallbackRotatedAt == nil,
            // Device keys the record says were never published are sent again by the full path.
            upload.deviceKeys != nil || record.deviceKeysUploaded
        else { return nil }
        let snapshot: AccountSnapshot?
        do {
            snapshot = try cipher.unpickle(record.pickle) { try AccountSnapshot.open($0, key: $1) }
        } catch {
            return nil
        }
        guard let snapshot else { return nil }
        snapshot.markKeysAsPublished()
        record.pickle = try pickle { try cipher.pickle { try snapshot.seal(key: $0) } }
        if upload.deviceKeys != nil { record.deviceKeysUploaded = true }
        var changes = CryptoChanges()
        changes.accounts = [record]
        return changes
    }
}
