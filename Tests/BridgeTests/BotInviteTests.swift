@testable import Bridge
import AsyncHTTPClient
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import Testing

@Suite("The bot and puppets: invites")
struct BotInviteTests {
    @Test("a puppet ignores an invite from a server not in bridge.allowed_inviter_servers (nothing is asked of the homeserver)")
    func puppetInvitesFromOtherServers() async throws {
        let store = MemoryCryptoStore()
        let engine = CryptoEngine(
            machine: CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "i", count: 44))), store: store,
            transport: FakeTransport(homeserver: FakeHomeserver()))
        // A homeserver that does not answer: a join attempt would fail, and fail the test.
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(1), read: .seconds(1))))
        defer { Task { try? await http.shutdown() } }
        var homeserver = HomeserverClient(baseURL: "http://127.0.0.1:1", asToken: "unused", http: http)
        homeserver.maxAttempts = 1
        let users = LocalUsers(bot: try UserID("@bot:hs"), puppetNamespaceRegex: "@sb_.+:hs")
        let actions = BridgeActions(
            engine: engine, homeserver: homeserver, store: store,
            sends: PostgresBridgeSendLedger(client: PostgresClient(configuration: PostgresConfiguration(connectionString: "postgresql://nobody@127.0.0.1:1/none"))),
            users: users)
        let bot = BotService(
            engine: engine, homeserver: homeserver, store: store, actions: actions, commands: ManagementCommands(admins: [], commands: []),
            managementRoom: nil, autoJoin: true, allowedInviterServers: ["hs"])
        try await bot.handle(.invited(roomID: try RoomID("!r:evil"), userID: try UserID("@sb_alice:hs"), inviter: try UserID("@mallory:evil")))
        // From an allowed server the puppet does try to join (and this homeserver fails it).
        await #expect(throws: (any Error).self) {
            try await bot.handle(.invited(roomID: try RoomID("!r:hs"), userID: try UserID("@sb_alice:hs"), inviter: try UserID("@carol:hs")))
        }
    }
}
