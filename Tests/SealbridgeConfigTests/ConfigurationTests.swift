import Foundation
import SealbridgeConfig
import Testing

let asToken = String(repeating: "a", count: 40) + "AS"
let hsToken = String(repeating: "h", count: 40) + "HS"
let pickleKey = "k3yMaterialThatIsLongEnoughForThirtyTwoBytes+AAAA"

/// A complete, valid configuration with overrides applied by simple text substitution.
func validYAML(_ extra: String = "") -> String {
    """
    homeserver:
      url: http://127.0.0.1:8008
      server_name: example.org
    appservice:
      as_token: "\(asToken)"
      hs_token: "\(hsToken)"
    database:
      uri: postgresql://sealbridge:dbpassw0rd@127.0.0.1/sealbridge
    encryption:
      pickle_key: "\(pickleKey)"
    management:
      admins: ["@admin:example.org"]
    \(extra)
    """
}

func problems(_ body: () throws -> Void) -> [String] {
    do {
        try body()
        return []
    } catch let error as ConfigError {
        return error.problems.map(\.description)
    } catch {
        return ["unexpected: \(error)"]
    }
}

var packageRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

@Suite("Configuration")
struct ConfigurationTests {
    @Test("a minimal config loads with documented defaults")
    func defaults() throws {
        let config = try SealbridgeConfiguration.parse(validYAML())
        #expect(config.appservice.port == 29330)
        #expect(config.appservice.address == "127.0.0.1")
        #expect(config.appservice.publicURL == "http://127.0.0.1:29330")
        #expect(config.appservice.maxBodySize == 128 * 1024 * 1024)
        #expect(config.database.poolSize == 10)
        #expect(config.encryption.enabled)
        #expect(config.encryption.rotationMessages == 100)
        #expect(config.encryption.rotationPeriodMilliseconds == 604_800_000)
        #expect(config.encryption.sharingPolicy == .crossSigned)
        #expect(config.botUserID == "@sealbridge:example.org")
        #expect(config.puppetNamespaceRegex == "@sealbridge_.+:example\\.org")
        #expect(config.logging.format == .text)
        #expect(config.database.statementTimeoutMilliseconds == 30_000)
        #expect(config.appservice.holdSeconds == 20)
        #expect(config.appservice.poisonAttempts == 3)
        #expect(config.encryption.undecryptableAfter == 60)
        #expect(config.encryption.parkedRetention == 7 * 86_400)
        #expect(config.retention.replay == 7 * 86_400)
        #expect(config.encryption.keyRequestAfter == 10)
        #expect(config.retention.retiredSessions == 7 * 86_400)
    }

    @Test("the bridge API can have a listener of its own, never the appservice's or the metrics' one")
    func bridgeAPIListener() throws {
        let token = "bridge_api:\n  token: \"\(String(repeating: "b", count: 40))\"\n"
        #expect(try SealbridgeConfiguration.parse(validYAML(token + "  listen: 127.0.0.1:29331")).bridgeAPI.listen == "127.0.0.1:29331")
        #expect(try SealbridgeConfiguration.parse(validYAML(token)).bridgeAPI.listen == nil)
        for (listen, reason) in [("nonsense", "host:port"), ("127.0.0.1:29330", "appservice listener")] {
            let found = problems { _ = try SealbridgeConfiguration.parse(validYAML(token + "  listen: \(listen)")) }
            #expect(found.contains { $0.contains("bridge_api.listen") && $0.contains(reason) }, "\(found)")
        }
        let metrics = problems {
            _ = try SealbridgeConfiguration.parse(validYAML(token + "  listen: 127.0.0.1:9330\nmetrics:\n  listen: 127.0.0.1:9330"))
        }
        #expect(metrics.contains { $0.contains("bridge_api.listen") && $0.contains("metrics listener") }, "\(metrics)")
    }

    @Test("the replay ledger is kept at least as long as parked events wait for their keys")
    func replayRetentionCoversParkedEvents() throws {
        #expect(try SealbridgeConfiguration.parse(validYAML("retention: {replay_days: 30}")).retention.replay == 30 * 86_400)
        let found = problems { _ = try SealbridgeConfiguration.parse(validYAML("retention: {replay_days: 3}")) }
        #expect(found.contains { $0.contains("retention.replay_days") && $0.contains("encryption.undecryptable.retention_days") }, "\(found)")
    }

    @Test("key requests: the wait is configurable, can be turned off, and is bounded; retired sessions' retention is set in days")
    func keyRequests() throws {
        let set = try SealbridgeConfiguration.parse(validYAML("retention:\n  retired_sessions_days: 2").replacingOccurrences(
            of: "encryption:\n", with: "encryption:\n  key_requests: {request_after_seconds: 30}\n"))
        #expect(set.encryption.keyRequestAfter == 30 && set.retention.retiredSessions == 2 * 86_400)
        let off = try SealbridgeConfiguration.parse(validYAML().replacingOccurrences(
            of: "encryption:\n", with: "encryption:\n  key_requests: {enabled: false}\n"))
        #expect(off.encryption.keyRequestAfter == nil)
        let bad = problems {
            _ = try SealbridgeConfiguration.parse(validYAML().replacingOccurrences(
                of: "encryption:\n", with: "encryption:\n  key_requests: {request_after_seconds: 0, ask: true}\n"))
        }
        #expect(bad.contains { $0.contains("encryption.key_requests.request_after_seconds") })
        #expect(bad.contains { $0.contains("encryption.key_requests.ask") })
    }

    @Test("the journal goes to $STATE_DIRECTORY when systemd sets it, else next to the config; a pool too small for one transaction is refused")
    func journalAndPool() throws {
        let beside = try SealbridgeConfiguration.parse(validYAML(), directory: URL(fileURLWithPath: "/etc/sealbridge"))
        #expect(beside.appservice.journalPath == "/etc/sealbridge/journal")
        let state = try SealbridgeConfiguration.parse(
            validYAML(), directory: URL(fileURLWithPath: "/etc/sealbridge"), environment: ["STATE_DIRECTORY": "/var/lib/sealbridge"])
        #expect(state.appservice.journalPath == "/var/lib/sealbridge/journal")
        let set = try SealbridgeConfiguration.parse(validYAML().replacingOccurrences(of: "appservice:\n", with: "appservice:\n  journal: {path: /srv/j, hold_seconds: 5}\n"))
        #expect(set.appservice.journalPath == "/srv/j" && set.appservice.holdSeconds == 5)
        let small = problems { _ = try SealbridgeConfiguration.parse(validYAML().replacingOccurrences(of: "database:\n", with: "database:\n  pool_size: 2\n")) }
        #expect(small.count == 1 && small.first?.contains("database.pool_size") == true)
        let long = problems {
            _ = try SealbridgeConfiguration.parse(validYAML().replacingOccurrences(of: "appservice:\n", with: "appservice:\n  journal: {hold_seconds: 45}\n"))
        }
        #expect(long.first?.contains("appservice.journal.hold_seconds") == true)
    }

    @Test("the shipped example parses and is refused only for its CHANGE_ME placeholders")
    func shippedExample() throws {
        let path = packageRoot.appendingPathComponent("Config/config.example.yaml").path
        let found = problems { _ = try SealbridgeConfiguration.load(path: path, environment: [:]) }
        #expect(found.count == 3)
        #expect(found.contains { $0.hasPrefix("appservice.as_token:") })
        #expect(found.contains { $0.hasPrefix("appservice.hs_token:") })
        #expect(found.contains { $0.hasPrefix("encryption.pickle_key:") })
        // With real secrets from the environment, the example is a working configuration.
        let config = try SealbridgeConfiguration.load(path: path, environment: [
            "SEALBRIDGE_APPSERVICE_AS_TOKEN": asToken, "SEALBRIDGE_APPSERVICE_HS_TOKEN": hsToken,
            "SEALBRIDGE_ENCRYPTION_PICKLE_KEY": pickleKey,
        ])
        #expect(config.management.admins == ["@admin:example.org"])
    }

    @Test("many mistakes are reported together, each with its key path, without secret values")
    func allProblemsAtOnce() {
        let yaml = """
            homeserver:
              url: ftp://nowhere
            appservice:
              port: 70000
              as_token: short-secret-value
              hs_tokne: typo
              puppets:
                localpart_template: Bridge
            database:
              pool_size: many
            encryption:
              pickle_key: weak-secret-value
              sharing_policy: everyone
            management:
              admins: ["admin", "@ok:example.org"]
            logging:
              level: loud
            surprise: 1
            """
        let found = problems { _ = try SealbridgeConfiguration.parse(yaml) }
        let expectedPaths = [
            "homeserver.url:", "homeserver.server_name: missing", "appservice.port:", "appservice.as_token: too short",
            "appservice.hs_tokne: unknown key", "appservice.hs_token: missing", "appservice.puppets.localpart_template: must contain {id}",
            "database.uri: missing", "database.pool_size:", "encryption.pickle_key: too weak", "encryption.sharing_policy:",
            "management.admins[0]:", "logging.level:", "surprise: unknown key",
        ]
        for path in expectedPaths {
            #expect(found.contains { $0.hasPrefix(path) }, "missing problem \(path) in \(found)")
        }
        #expect(!found.joined().contains("short-secret-value"))
        #expect(!found.joined().contains("weak-secret-value"))
    }

    @Test("secrets from *_file, relative to $CREDENTIALS_DIRECTORY, trailing newline stripped; conflicts refused")
    func secretFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data((hsToken + "\n").utf8).write(to: directory.appendingPathComponent("hs_token"))
        let yaml = validYAML().replacingOccurrences(of: "hs_token: \"\(hsToken)\"", with: "hs_token_file: hs_token")
        let config = try SealbridgeConfiguration.parse(yaml, environment: ["CREDENTIALS_DIRECTORY": directory.path])
        #expect(config.appservice.hsToken == hsToken)

        let missing = problems { _ = try SealbridgeConfiguration.parse(yaml, environment: ["CREDENTIALS_DIRECTORY": "/nonexistent"]) }
        #expect(missing.contains { $0.hasPrefix("appservice.hs_token_file: cannot read") })

        let both = validYAML().replacingOccurrences(of: "hs_token: \"\(hsToken)\"", with: "hs_token: \"\(hsToken)\"\n  hs_token_file: x")
        #expect(problems { _ = try SealbridgeConfiguration.parse(both) }.contains { $0.hasPrefix("appservice.hs_token: given both") })
    }

    @Test("previous pickle keys: read from their files (relative to $CREDENTIALS_DIRECTORY), checked, never shown")
    func previousPickleKeys() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let old = String(repeating: "o", count: 44), older = String(repeating: "p", count: 44)
        try Data((old + "\n").utf8).write(to: directory.appendingPathComponent("old"))
        try Data(older.utf8).write(to: directory.appendingPathComponent("older"))
        try Data("short".utf8).write(to: directory.appendingPathComponent("weak"))
        let environment = ["CREDENTIALS_DIRECTORY": directory.path]
        #expect(try SealbridgeConfiguration.parse(validYAML()).encryption.previousPickleKeys.isEmpty)
        func yaml(_ files: String) -> String {
            validYAML().replacingOccurrences(of: "encryption:\n", with: "encryption:\n  previous_pickle_key_files: \(files)\n")
        }
        let config = try SealbridgeConfiguration.parse(yaml("[old, older]"), environment: environment)
        #expect(config.encryption.previousPickleKeys == [old, older])
        #expect(!config.summary.contains(old) && config.summary.contains("encryption on (2 previous pickle key(s) still read)"))
        let found = problems { _ = try SealbridgeConfiguration.parse(yaml("[old, missing, weak]"), environment: environment) }
        #expect(found.contains { $0.hasPrefix("encryption.previous_pickle_key_files[1]: cannot read") })
        #expect(found.contains { $0.hasPrefix("encryption.previous_pickle_key_files[2]: too weak") })
        #expect(!found.joined().contains("short"))
        #expect(problems { _ = try SealbridgeConfiguration.parse(yaml("old"), environment: environment) }.contains {
            $0.hasPrefix("encryption.previous_pickle_key_files: must be a list")
        })
    }

    @Test("environment variables override the file")
    func environmentOverride() throws {
        let other = String(repeating: "z", count: 48)
        let config = try SealbridgeConfiguration.parse(validYAML(), environment: ["SEALBRIDGE_APPSERVICE_HS_TOKEN": other])
        #expect(config.appservice.hsToken == other)
    }

    @Test("tokens must differ; the summary holds no secret")
    func summaryHasNoSecrets() throws {
        let same = validYAML().replacingOccurrences(of: hsToken, with: asToken)
        #expect(problems { _ = try SealbridgeConfiguration.parse(same) }.contains { $0.hasPrefix("appservice.hs_token: must differ") })
        let summary = try SealbridgeConfiguration.parse(validYAML()).summary
        for secret in [asToken, hsToken, pickleKey, "dbpassw0rd"] { #expect(!summary.contains(secret)) }
    }

    @Test("unreadable or non-YAML files are a file error, not a crash")
    func fileErrors() {
        #expect(throws: ConfigFileError.self) { try SealbridgeConfiguration.load(path: "/nonexistent/config.yaml") }
        #expect(throws: ConfigFileError.self) { try SealbridgeConfiguration.parse("a: [unclosed") }
    }
}

@Suite("Registration")
struct RegistrationTests {
    @Test("has every key Synapse needs for an encrypted appservice, and the namespace matches puppets and the bot only")
    func registration() throws {
        let config = try SealbridgeConfiguration.parse(validYAML())
        let registration = Registration.generate(from: config)
        #expect(!registration.generatedTokens)
        for line in [
            "id: \"sealbridge\"", "url: \"http://127.0.0.1:29330\"", "as_token: \"\(asToken)\"", "hs_token: \"\(hsToken)\"",
            "sender_localpart: \"sealbridge\"", "rate_limited: false", "receive_ephemeral: true",
            "de.sorunome.msc2409.push_ephemeral: true", "org.matrix.msc3202: true", "io.element.msc4190: true", "exclusive: true",
        ] {
            #expect(registration.yaml.contains(line), "missing \(line)")
        }
        let regexes = registration.yaml.split(separator: "\n").filter { $0.contains("regex:") }.map {
            String($0.split(separator: "\"", maxSplits: 1)[1].dropLast()).replacingOccurrences(of: "\\\\", with: "\\")
        }
        #expect(regexes.count == 2)
        func matches(_ user: String) -> Bool {
            regexes.contains { pattern in
                let regex = try! NSRegularExpression(pattern: "^" + pattern + "$")
                return regex.firstMatch(in: user, range: NSRange(user.startIndex..., in: user)) != nil
            }
        }
        #expect(matches("@sealbridge_1234:example.org"))
        #expect(matches("@sealbridge:example.org"))
        #expect(!matches("@alice:example.org"))
        #expect(!matches("@sealbridge_1234:exampleXorg"))
    }

    @Test("missing tokens are generated: long, random, different")
    func generatedTokens() throws {
        let yaml = validYAML().replacingOccurrences(of: "  as_token: \"\(asToken)\"\n  hs_token: \"\(hsToken)\"\n", with: "  id: sb\n")
        let config = try SealbridgeConfiguration.parse(yaml, requireTokens: false)
        let one = Registration.generate(from: config), two = Registration.generate(from: config)
        #expect(one.generatedTokens)
        #expect(one.asToken.count == 64 && one.hsToken.count == 64)
        #expect(one.asToken != one.hsToken)
        #expect(one.asToken != two.asToken)
        #expect(problems { _ = try SealbridgeConfiguration.parse(yaml) }.contains { $0.hasPrefix("appservice.as_token: missing") })
    }
}

@Suite("Configuration: bridge API")
struct BridgeAPIConfigurationTests {
    @Test("off by default; a token turns it on, from the environment too")
    func token() throws {
        #expect(try SealbridgeConfiguration.parse(validYAML()).bridgeAPI.token == nil)
        let token = String(repeating: "b", count: 40)
        #expect(try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  token: \"\(token)\"")).bridgeAPI.token == token)
        let fromEnvironment = try SealbridgeConfiguration.parse(validYAML(), environment: ["SEALBRIDGE_BRIDGE_API_TOKEN": token])
        #expect(fromEnvironment.bridgeAPI.token == token)
    }

    @Test("short, placeholder or reused tokens are refused, and the API needs encryption")
    func refusals() {
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  token: short")) }
            == ["bridge_api.token: too short: use at least 32 random characters"])
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  token: CHANGE_ME")) }
            == ["bridge_api.token: still the example placeholder CHANGE_ME"])
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  token: \"\(hsToken)\"")) }
            == ["bridge_api.token: must differ from the appservice tokens"])
        let withoutEncryption = validYAML("bridge_api:\n  token: \"\(String(repeating: "b", count: 40))\"")
            .replacingOccurrences(of: "encryption:\n  pickle_key: \"\(pickleKey)\"", with: "encryption:\n  enabled: false")
        #expect(problems { _ = try SealbridgeConfiguration.parse(withoutEncryption) }
            == ["bridge_api.token: the bridge API needs encryption.enabled (its outbox is sealed with the pickle key)"])
    }
}

@Suite("Configuration: sections")
struct SectionTests {
    @Test("a section with only comments under it takes its defaults; a scalar is still refused")
    func emptySection() {
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  # token: x")) }.isEmpty)
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api: 3")) } == ["bridge_api: must be a mapping of keys to values"])
    }
}

@Suite("Configuration: webhook")
struct WebhookConfigurationTests {
    let token = String(repeating: "b", count: 40)

    @Test("a webhook needs a URL, a strong secret and the bridge API")
    func webhook() throws {
        let secret = String(repeating: "s", count: 40)
        let config = try SealbridgeConfiguration.parse(validYAML(
            "bridge_api:\n  token: \"\(token)\"\n  webhook:\n    url: http://127.0.0.1:9000/hook\n    secret: \"\(secret)\""))
        #expect(config.bridgeAPI.webhookURL == "http://127.0.0.1:9000/hook" && config.bridgeAPI.webhookSecret == secret)
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  token: \"\(token)\"\n  webhook:\n    url: https://h/x")) }
            == ["bridge_api.webhook.secret: missing (set secret, secret_file or $SEALBRIDGE_BRIDGE_API_WEBHOOK_SECRET)"])
        #expect(problems { _ = try SealbridgeConfiguration.parse(validYAML("bridge_api:\n  webhook:\n    url: ftp://h/x\n    secret: short")) }
            == ["bridge_api.webhook.url: not an http(s) URL: \"ftp://h/x\"", "bridge_api.webhook.secret: too short: use at least 32 random characters",
                "bridge_api.webhook.url: needs bridge_api.token (the bridge API must be on)"])
    }

    @Test("a webhook over plain http:// is refused unless it is on this machine or explicitly allowed")
    func insecureWebhook() throws {
        let secret = String(repeating: "s", count: 40)
        func yaml(_ url: String, allow: Bool = false) -> String {
            validYAML("bridge_api:\n  token: \"\(token)\"\n  webhook:\n    url: \(url)\n    secret: \"\(secret)\"" + (allow ? "\n    allow_insecure_http: true" : ""))
        }
        #expect(problems { _ = try SealbridgeConfiguration.parse(yaml("http://bridge.example.org/hook")) }
            == ["bridge_api.webhook.url: http:// sends decrypted messages in the clear: use https://, a loopback address, or set allow_insecure_http: true"])
        for ok in ["https://bridge.example.org/hook", "http://localhost:9000/hook", "http://127.0.0.2/hook", "http://[::1]:9000/hook"] {
            #expect(problems { _ = try SealbridgeConfiguration.parse(yaml(ok)) }.isEmpty, "\(ok)")
        }
        #expect(problems { _ = try SealbridgeConfiguration.parse(yaml("http://bridge.internal/hook", allow: true)) }.isEmpty)
    }
}
