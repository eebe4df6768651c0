import Bridge
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport

/// What the tests against the real Synapse of scripts/test start from: the appservice's client, user
/// ids no other run shares, and engines on memory stores.
struct SynapseFixture {
    let client: HomeserverClient
    /// Makes this run's user and device ids unique on a homeserver that outlives it.
    let suffix = UInt32.random(in: 0...UInt32.max)

    init() throws {
        let (url, token) = try TestHomeserver.environment()
        client = HomeserverClient(baseURL: url, asToken: token)
    }

    /// `@sbtest_<tag><suffix>:localhost`.
    func user(_ tag: String) throws -> UserID { try UserID("@sbtest_\(tag)\(suffix):localhost") }

    /// `<tag><suffix>`.
    func device(_ tag: String) throws -> DeviceID { try DeviceID("\(tag)\(suffix)") }

    /// A local user registered on the homeserver without a device (an observer, a claimer).
    func registered(_ tag: String) async throws -> UserID {
        let user = try user(tag)
        try await client.registerUser(localpart: user.localpart)
        return user
    }

    /// An engine of its own (store and pickle secret) talking to the homeserver; with `crossSigning`,
    /// its users get cross-signing identities.
    func engine(
        secret: Character, crossSigning: (@Sendable (UserID) -> ForeignIdentityPolicy)? = nil
    ) throws -> (engine: CryptoEngine, machine: CryptoMachine, store: MemoryCryptoStore) {
        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: secret, count: 44)))
        return (CryptoEngine(machine: machine, store: store, transport: client, crossSigning: crossSigning), machine, store)
    }
}
