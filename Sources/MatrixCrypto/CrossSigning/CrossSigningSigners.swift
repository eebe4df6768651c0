import Olm

/// The three signing keys a set of seeds makes, each made once.
///
/// Making a ``PkSigning`` derives its Ed25519 key pair; a new puppet's identity made ten of them for three
/// keys (issue 12 point 4).
struct CrossSigningSigners {
    let master: PkSigning
    let selfSigning: PkSigning
    let userSigning: PkSigning

    init(_ seeds: CrossSigningSeeds) throws(CryptoError) {
        do {
            master = try PkSigning(seed: seeds.master)
            selfSigning = try PkSigning(seed: seeds.selfSigning)
            userSigning = try PkSigning(seed: seeds.userSigning)
        } catch {
            throw CryptoError(code: .olm, message: "cross-signing seeds do not make keys: \(error)")
        }
    }

    var publicKeys: CrossSigningPublicKeys {
        CrossSigningPublicKeys(master: master.publicKey, selfSigning: selfSigning.publicKey, userSigning: userSigning.publicKey)
    }
}
