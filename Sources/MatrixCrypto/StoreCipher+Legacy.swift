import Olm
import Primitives

extension StoreCipher {
    /// Seals as versions before key ids did (one key for every record, no header): only for tests
    /// that prove old rows stay readable and get rotated.
    func sealVersion1(_ secret: [UInt8], context: String) throws -> [UInt8] {
        try AES256GCM.seal(secret, key: current.legacySealKey, authenticating: Array(context.utf8)).combined
    }

    /// Pickles as versions before key ids did: only for tests.
    func pickleVersion1(_ body: (PickleKey) throws -> String) rethrows -> String {
        try body(current.legacyPickleKey)
    }
}
