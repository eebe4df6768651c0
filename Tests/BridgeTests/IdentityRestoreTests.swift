import Bridge
import MatrixCrypto
import MatrixModels
import Testing

/// A homeserver's account data and published master key, in memory; it can be made to lie.
actor FakeSecretStorageHomeserver: SecretStorageTransport {
    var data: [String: JSONValue] = [:]
    var master: String?
    var writes = 0

    func accountData(_ type: String, of userID: UserID) async throws -> JSONValue? { data[type] }
    func setAccountData(_ type: String, content: JSONValue, of userID: UserID) async throws {
        data[type] = content
        writes += 1
    }
    func publishedMasterKey(of userID: UserID) async throws -> String? { master }
    func set(master: String?) { self.master = master }
    func set(_ type: String, _ content: JSONValue?) { data[type] = content }
}

/// The startup decision about a lost bot identity: nothing to do, restore, refuse, or reset on request.
@Suite("Restoring the bot's identity from secret storage")
struct IdentityRestoreTests {
    let bot = try! UserID("@bot:localhost")

    func engine() throws -> (CryptoEngine, MemoryCryptoStore) {
        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "r", count: 44)))
        return (CryptoEngine(machine: machine, store: store, transport: FakeTransport(homeserver: FakeHomeserver())), store)
    }

    /// A homeserver holding `seeds`' identity and its secret storage under `key`.
    func homeserver(_ seeds: CrossSigningSeeds, key: SecretStorageKey) async throws -> FakeSecretStorageHomeserver {
        let homeserver = FakeSecretStorageHomeserver()
        try await homeserver.storeCrossSigningSeeds(seeds, of: bot, key: key)
        await homeserver.set(master: try seeds.publicKeys().master)
        return homeserver
    }

    @Test("restores the same identity with the recovery key; a second call finds it in the database and asks nothing")
    func restores() async throws {
        let (engine, store) = try engine()
        let seeds = CrossSigningSeeds.generate(), key = SecretStorageKey.generate()
        let homeserver = try await homeserver(seeds, key: key)
        let writes = await homeserver.writes
        let outcome = try await engine.restoreIdentity(of: bot, from: homeserver, recoveryKey: key.recoveryKey, resetIdentity: false)
        #expect(outcome == .restored(masterKey: try seeds.publicKeys().master))
        #expect(await store.crossSigningIdentity(userID: bot)?.keys == (try seeds.publicKeys()))
        #expect(try await engine.machine.crossSigningSeeds(of: bot) == seeds)
        #expect(await homeserver.writes == writes)
        // Even a homeserver that now serves nothing is not asked: the database has the identity.
        await homeserver.set(master: nil)
        #expect(try await engine.restoreIdentity(of: bot, from: homeserver, recoveryKey: nil, resetIdentity: false) == .inDatabase)
    }

    @Test("no identity anywhere: a new one may be made")
    func fresh() async throws {
        let (engine, store) = try engine()
        let outcome = try await engine.restoreIdentity(of: bot, from: FakeSecretStorageHomeserver(), recoveryKey: nil, resetIdentity: false)
        #expect(outcome == .noneOnHomeserver)
        #expect(await store.crossSigningIdentity(userID: bot) == nil)
    }

    @Test("without a usable key it refuses, naming both ways out; --reset-identity answers resetRequested")
    func refuses() async throws {
        let seeds = CrossSigningSeeds.generate(), key = SecretStorageKey.generate()
        let master = try seeds.publicKeys().master
        let homeserver = try await homeserver(seeds, key: key)
        func refusal(_ recoveryKey: RecoveryKey?) async throws -> IdentityRestoreError? {
            let (engine, store) = try engine()
            do {
                _ = try await engine.restoreIdentity(of: bot, from: homeserver, recoveryKey: recoveryKey, resetIdentity: false)
                return nil
            } catch let error as IdentityRestoreError {
                #expect(error.message.contains("encryption.recovery_key_file") && error.message.contains("--reset-identity"))
                #expect(error.message.contains(master))
                #expect(await store.crossSigningIdentity(userID: bot) == nil)
                let reset = try await engine.restoreIdentity(of: bot, from: homeserver, recoveryKey: recoveryKey, resetIdentity: true)
                #expect(reset == .resetRequested(replacing: master))
                #expect(await store.crossSigningIdentity(userID: bot) == nil)
                return error
            }
        }
        #expect(try await refusal(nil)?.cause?.code == .missing)
        #expect(try await refusal(RecoveryKey.generate())?.cause?.code == .wrongRecoveryKey)

        // Secret storage altered by someone with access to the account data.
        var master1 = try #require(await homeserver.data[SecretStorage.masterSecret])
        var entry = try EncryptedSecret(json: try #require(master1["encrypted"]?[key.id]), what: "t")
        entry.ciphertext[0] ^= 1
        master1 = ["encrypted": .object([key.id: entry.json])]
        await homeserver.set(SecretStorage.masterSecret, master1)
        #expect(try await refusal(key.recoveryKey)?.cause?.code == .authenticationFailed)

        // No secret storage at all, or storage emptied to {}.
        await homeserver.set(SecretStorage.defaultKeyType, [:])
        #expect(try await refusal(key.recoveryKey)?.cause?.code == .missing)
    }

    @Test("seeds that do not make the master key the homeserver serves are not imported")
    func otherIdentity() async throws {
        let (engine, store) = try engine()
        let key = SecretStorageKey.generate()
        let homeserver = try await homeserver(CrossSigningSeeds.generate(), key: key)
        // The identity was reset (or the homeserver lies): it serves another master key.
        await homeserver.set(master: try CrossSigningSeeds.generate().publicKeys().master)
        await #expect(throws: IdentityRestoreError.self) {
            try await engine.restoreIdentity(of: bot, from: homeserver, recoveryKey: key.recoveryKey, resetIdentity: false)
        }
        #expect(await store.crossSigningIdentity(userID: bot) == nil)
    }
}
