import Foundation
import Yams

extension SealbridgeConfiguration {
    /// The value the example config ships for secrets the operator must set.
    static let placeholder = "CHANGE_ME"

    /// Loads and validates the configuration at `path`.
    ///
    /// Secrets may sit inline, in files (`*_file`, relative paths under `$CREDENTIALS_DIRECTORY` when
    /// systemd's `LoadCredential=` set it), or in environment variables `SEALBRIDGE_<SECTION>_<KEY>`,
    /// which win over the file.
    /// - Throws: ``ConfigFileError`` if the file cannot be read or parsed; ``ConfigError`` with every problem.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment, requireTokens: Bool = true
    ) throws -> SealbridgeConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(path: path, reason: FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try parse(String(decoding: data, as: UTF8.self), path: path, directory: directory, environment: environment, requireTokens: requireTokens)
    }

    /// Parses and validates configuration text.
    ///
    /// - Parameter requireTokens: False for `generate-registration`, which creates missing tokens.
    public static func parse(
        _ yaml: String, path: String = "config", directory: URL = URL(fileURLWithPath: "."),
        environment: [String: String] = [:], requireTokens: Bool = true
    ) throws -> SealbridgeConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigFileError(path: path, reason: "not valid YAML: \(error)")
        }
        let base = environment["CREDENTIALS_DIRECTORY"].map { URL(fileURLWithPath: $0) } ?? directory
        let reader = ConfigReader(environment: environment, fileBase: base)
        let top = root.map { reader.section($0, path: "") } ?? ConfigReader.Section(reader: reader, path: "", values: [:])
        top.rejectUnknown([
            "homeserver", "appservice", "database", "encryption", "management", "bridge", "bridge_api", "logging", "metrics", "retention",
            "self_checks",
        ])
        let stateDirectory = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
        let journalDefault = stateDirectory.map { URL(fileURLWithPath: $0).appendingPathComponent("journal").path }
            ?? directory.appendingPathComponent("journal").path
        var configuration = SealbridgeConfiguration(
            homeserver: readHomeserver(top.section("homeserver")),
            appservice: readAppService(top.section("appservice"), requireTokens: requireTokens, journalDefault: journalDefault),
            database: readDatabase(top.section("database")),
            encryption: readEncryption(top.section("encryption")),
            management: readManagement(top.section("management")),
            bridge: readBridge(top.section("bridge"), serverName: top.section("homeserver").string("server_name") ?? ""),
            bridgeAPI: readBridgeAPI(top.section("bridge_api")),
            logging: readLogging(top.section("logging")),
            metrics: readMetrics(top.section("metrics")),
            retention: readRetention(top.section("retention")))
        configuration.selfChecks = readSelfChecks(top.section("self_checks"), directory: directory)
        configuration.crossCheck(reader)
        guard reader.problems.isEmpty else { throw ConfigError(problems: reader.problems) }
        return configuration
    }

    static func readHomeserver(_ s: ConfigReader.Section) -> Homeserver {
        s.rejectUnknown(["url", "server_name"])
        let url = s.string("url", required: true) ?? ""
        if !url.isEmpty { Validation.httpURL(url, s.key("url"), s.reader) }
        let serverName = s.string("server_name", required: true) ?? ""
        if !serverName.isEmpty && !Validation.isServerName(serverName) {
            s.reader.problem(s.key("server_name"), "not a valid server name: \"\(serverName)\"")
        }
        return Homeserver(url: url, serverName: serverName)
    }

    static func readAppService(_ s: ConfigReader.Section, requireTokens: Bool, journalDefault: String) -> AppService {
        s.rejectUnknown([
            "id", "address", "port", "url", "as_token", "as_token_file", "hs_token", "hs_token_file", "bot", "puppets", "max_body_size",
            "journal", "poison_attempts",
        ])
        let journal = s.section("journal")
        journal.rejectUnknown(["path", "hold_seconds"])
        let port = s.int("port", default: 29330, range: 1...65535)
        let address = s.string("address", default: "127.0.0.1")!
        let url = s.string("url", default: "http://\(address):\(port)")!
        Validation.httpURL(url, s.key("url"), s.reader)
        var asToken = s.secret("as_token", required: requireTokens, environmentName: "SEALBRIDGE_APPSERVICE_AS_TOKEN")
        var hsToken = s.secret("hs_token", required: requireTokens, environmentName: "SEALBRIDGE_APPSERVICE_HS_TOKEN")
        if !requireTokens {
            // generate-registration replaces placeholders with fresh tokens.
            if asToken == placeholder { asToken = nil }
            if hsToken == placeholder { hsToken = nil }
        }
        for (name, token) in [("as_token", asToken), ("hs_token", hsToken)] {
            if token == placeholder {
                s.reader.problem(s.key(name), "still the example placeholder CHANGE_ME")
            } else if let token, token.count < 32 {
                s.reader.problem(s.key(name), "too short: use at least 32 random characters")
            }
        }
        if let asToken, asToken == hsToken, asToken != placeholder { s.reader.problem(s.key("hs_token"), "must differ from as_token") }
        let bot = s.section("bot")
        bot.rejectUnknown(["localpart", "display_name"])
        let botLocalpart = bot.string("localpart", default: "sealbridge")!
        let puppets = s.section("puppets")
        puppets.rejectUnknown(["localpart_template", "namespace_regex"])
        let template = puppets.string("localpart_template", default: "sealbridge_{id}")!
        if !template.contains("{id}") { s.reader.problem(puppets.key("localpart_template"), "must contain {id}") }
        for (key, localpart) in [(bot.key("localpart"), botLocalpart), (puppets.key("localpart_template"), template.replacingOccurrences(of: "{id}", with: "x"))]
        where !Validation.isLocalpart(localpart) {
            s.reader.problem(key, "may only use a-z, 0-9 and . _ = - /")
        }
        let regex = puppets.string("namespace_regex")
        if let regex, (try? NSRegularExpression(pattern: regex)) == nil {
            s.reader.problem(puppets.key("namespace_regex"), "not a valid regular expression")
        }
        return AppService(
            id: s.string("id", default: "sealbridge")!, address: address, port: port, publicURL: url,
            asToken: asToken, hsToken: hsToken, botLocalpart: botLocalpart,
            botDisplayName: bot.string("display_name", default: "Sealbridge")!, puppetLocalpartTemplate: template,
            namespaceRegexOverride: regex, maxBodySize: s.int("max_body_size", default: 128 * 1024 * 1024, range: 1024...(1 << 30)),
            journalPath: journal.string("path", default: journalDefault)!,
            holdSeconds: journal.int("hold_seconds", default: 20, range: 0...30),
            poisonAttempts: s.int("poison_attempts", default: 3, range: 1...100))
    }

    static func readDatabase(_ s: ConfigReader.Section) -> Database {
        s.rejectUnknown(["uri", "uri_file", "pool_size", "statement_timeout_ms"])
        let uri = s.secret("uri", required: true, environmentName: "SEALBRIDGE_DATABASE_URI") ?? ""
        if !uri.isEmpty && !(uri.hasPrefix("postgres://") || uri.hasPrefix("postgresql://") || uri.contains("=")) {
            s.reader.problem(s.key("uri"), "must be a postgresql:// URI or a libpq keyword string")
        }
        let poolSize = s.int("pool_size", default: 10, range: 1...200)
        if poolSize < minimumPoolSize {
            s.reader.problem(
                s.key("pool_size"),
                "at least \(minimumPoolSize): a transaction holds one connection while the crypto store reads on another, and the bridge API and health checks need theirs")
        }
        return Database(uri: uri, poolSize: poolSize, statementTimeoutMilliseconds: s.int("statement_timeout_ms", default: 30_000, range: 0...3_600_000))
    }

    static func readEncryption(_ s: ConfigReader.Section) -> Encryption {
        s.rejectUnknown([
            "enabled", "pickle_key", "pickle_key_file", "previous_pickle_key_files", "recovery_key", "recovery_key_file", "rotation", "sharing_policy", "accept_from",
            "undecryptable", "cross_signing", "key_requests",
        ])
        let enabled = s.bool("enabled", default: true)
        let key = s.secret("pickle_key", required: enabled, environmentName: "SEALBRIDGE_ENCRYPTION_PICKLE_KEY")
        if key == placeholder {
            s.reader.problem(s.key("pickle_key"), "still the example placeholder CHANGE_ME")
        } else if let key, key.utf8.count < 43 {
            s.reader.problem(s.key("pickle_key"), "too weak: use at least 32 random bytes, e.g. `openssl rand -base64 32`")
        }
        // Read only (docs/rotation.md): rows still under an earlier key while rotate-pickle-key moves them.
        let previousKeys = s.strings("previous_pickle_key_files").enumerated().compactMap { index, path -> String? in
            let name = "\(s.key("previous_pickle_key_files"))[\(index)]"
            guard let previous = s.secretFile(path, key: name) else { return nil }
            if previous.utf8.count < 43 { s.reader.problem(name, "too weak: a pickle key holds at least 32 random bytes") }
            return previous
        }
        // Checked as a recovery key (prefix, parity) when the daemon starts: SealbridgeConfig knows no crypto.
        let recoveryKey = s.secret("recovery_key", required: false, environmentName: "SEALBRIDGE_ENCRYPTION_RECOVERY_KEY")
        let rotation = s.section("rotation")
        rotation.rejectUnknown(["period_ms", "messages"])
        // MSC4153 (Matrix 1.18): keys MUST NOT go to non-cross-signed devices by default; messages from
        // them SHOULD NOT be shown — here the bridge logic decides, with encryption.trust on every event.
        func policy(_ key: String, default fallback: TrustPolicy) -> TrustPolicy {
            guard let policy = TrustPolicy(configValue: s.string(key, default: fallback.rawValue)!) else {
                s.reader.problem(s.key(key), "must be one of \(TrustPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
                return .all
            }
            return policy
        }
        let undecryptable = s.section("undecryptable")
        undecryptable.rejectUnknown(["surface_after_seconds", "retention_days"])
        let crossSigning = s.section("cross_signing")
        crossSigning.rejectUnknown(["enabled", "backfill_per_second"])
        let keyRequests = s.section("key_requests")
        keyRequests.rejectUnknown(["enabled", "request_after_seconds"])
        var encryption = Encryption(
            enabled: enabled, pickleKey: key, previousPickleKeys: previousKeys, recoveryKey: recoveryKey,
            rotationPeriodMilliseconds: rotation.int("period_ms", default: 604_800_000, range: 60_000...(30 * 86_400_000)),
            rotationMessages: rotation.int("messages", default: 100, range: 1...10_000), sharingPolicy: policy("sharing_policy", default: .crossSigned), acceptFrom: policy("accept_from", default: .all),
            undecryptableAfter: TimeInterval(undecryptable.int("surface_after_seconds", default: 60, range: 0...86_400)),
            parkedRetention: TimeInterval(undecryptable.int("retention_days", default: 7, range: 1...365) * 86_400),
            crossSigning: CrossSigning(
                enabled: crossSigning.bool("enabled", default: true),
                backfillPerSecond: crossSigning.int("backfill_per_second", default: 20, range: 1...1_000)))
        let askAfter = TimeInterval(keyRequests.int("request_after_seconds", default: 10, range: 1...86_400))
        encryption.keyRequestAfter = keyRequests.bool("enabled", default: true) ? askAfter : nil
        return encryption
    }

    static func readManagement(_ s: ConfigReader.Section) -> Management {
        s.rejectUnknown(["admins", "room", "auto_accept_invites"])
        let admins = s.strings("admins")
        for (index, admin) in admins.enumerated() where !Validation.isUserID(admin) {
            s.reader.problem("\(s.key("admins"))[\(index)]", "not a user id (@localpart:server): \"\(admin)\"")
        }
        let room = s.string("room")
        if let room, !room.hasPrefix("!") { s.reader.problem(s.key("room"), "must be a room id starting with '!'") }
        return Management(admins: admins, room: room, autoAcceptInvites: s.bool("auto_accept_invites", default: true))
    }

    static func readBridge(_ s: ConfigReader.Section, serverName: String) -> Bridge {
        s.rejectUnknown(["allowed_inviter_servers"])
        var servers = s.strings("allowed_inviter_servers")
        for (index, server) in servers.enumerated() where !Validation.isServerName(server) {
            s.reader.problem("\(s.key("allowed_inviter_servers"))[\(index)]", "not a server name: \"\(server)\"")
        }
        if servers.isEmpty { servers = [serverName] }
        return Bridge(allowedInviterServers: servers)
    }

    static func readBridgeAPI(_ s: ConfigReader.Section) -> BridgeAPI {
        s.rejectUnknown(["token", "token_file", "webhook", "listen"])
        let token = s.secret("token", required: false, environmentName: "SEALBRIDGE_BRIDGE_API_TOKEN")
        let listen = s.string("listen")
        if let listen, Validation.hostPort(listen) == nil { s.reader.problem(s.key("listen"), "must be host:port, e.g. 127.0.0.1:29331") }
        let webhook = s.section("webhook")
        webhook.rejectUnknown(["url", "secret", "secret_file", "allow_insecure_http"])
        let url = webhook.string("url")
        if let url {
            Validation.httpURL(url, webhook.key("url"), s.reader)
            // Deliveries carry plaintext: over the network only with TLS, unless the operator says so.
            if url.lowercased().hasPrefix("http://"), !Validation.isLoopbackURL(url), !webhook.bool("allow_insecure_http", default: false) {
                s.reader.problem(
                    webhook.key("url"),
                    "http:// sends decrypted messages in the clear: use https://, a loopback address, or set allow_insecure_http: true")
            }
        }
        let secret = webhook.secret("secret", required: url != nil, environmentName: "SEALBRIDGE_BRIDGE_API_WEBHOOK_SECRET")
        for (key, value) in [(s.key("token"), token), (webhook.key("secret"), secret)] {
            if value == placeholder {
                s.reader.problem(key, "still the example placeholder CHANGE_ME")
            } else if let value, value.count < 32 {
                s.reader.problem(key, "too short: use at least 32 random characters")
            }
        }
        if url != nil, token == nil { s.reader.problem(webhook.key("url"), "needs bridge_api.token (the bridge API must be on)") }
        return BridgeAPI(token: token, webhookURL: url, webhookSecret: url == nil ? nil : secret, listen: listen)
    }

    static func readLogging(_ s: ConfigReader.Section) -> Logging {
        s.rejectUnknown(["level", "format"])
        let level = s.string("level", default: "info")!
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) {
            s.reader.problem(s.key("level"), "must be one of trace, debug, info, notice, warning, error, critical")
        }
        let format = LogFormat(rawValue: s.string("format", default: "text")!)
        if format == nil { s.reader.problem(s.key("format"), "must be text or json") }
        return Logging(level: level, format: format ?? .text)
    }

    static func readRetention(_ s: ConfigReader.Section) -> Retention {
        s.rejectUnknown([
            "interval_minutes", "transactions_days", "quarantine_days", "olm_sessions_per_key", "withheld_days", "replay_days", "retired_sessions_days",
        ])
        var retention = Retention(
            interval: TimeInterval(s.int("interval_minutes", default: 10, range: 1...1_440) * 60),
            transactions: TimeInterval(s.int("transactions_days", default: 7, range: 1...3_650) * 86_400),
            resolvedQuarantine: TimeInterval(s.int("quarantine_days", default: 30, range: 1...3_650) * 86_400),
            olmSessionsPerKey: s.int("olm_sessions_per_key", default: 5, range: 1...1_000),
            withheld: TimeInterval(s.int("withheld_days", default: 30, range: 1...3_650) * 86_400),
            replay: TimeInterval(s.int("replay_days", default: 7, range: 1...3_650) * 86_400))
        retention.retiredSessions = TimeInterval(s.int("retired_sessions_days", default: 7, range: 1...3_650) * 86_400)
        return retention
    }

    static func readSelfChecks(_ s: ConfigReader.Section, directory: URL) -> SelfChecks {
        s.rejectUnknown(["enabled", "interval_minutes", "to_device_timeout_seconds", "registration_file"])
        // A relative path is read next to the configuration file, like the journal's.
        let registration = s.string("registration_file").map { path in
            path.hasPrefix("/") ? path : directory.appendingPathComponent(path).path
        }
        return SelfChecks(
            enabled: s.bool("enabled", default: true),
            interval: TimeInterval(s.int("interval_minutes", default: 5, range: 1...1_440) * 60),
            toDeviceTimeout: TimeInterval(s.int("to_device_timeout_seconds", default: 30, range: 5...300)),
            registrationFile: registration)
    }

    static func readMetrics(_ s: ConfigReader.Section) -> Metrics {
        s.rejectUnknown(["enabled", "listen", "token", "token_file"])
        let listen = s.string("listen")
        if let listen, Validation.hostPort(listen) == nil { s.reader.problem(s.key("listen"), "must be host:port, e.g. 127.0.0.1:9330") }
        let token = s.secret("token", required: false, environmentName: "SEALBRIDGE_METRICS_TOKEN")
        if token == placeholder {
            s.reader.problem(s.key("token"), "still the example placeholder CHANGE_ME")
        } else if let token, token.count < 32 {
            s.reader.problem(s.key("token"), "too short: use at least 32 random characters")
        }
        return Metrics(enabled: s.bool("enabled", default: true), listen: listen, token: token)
    }

    /// Checks that involve several sections.
    func crossCheck(_ reader: ConfigReader) {
        if metrics.listen == "\(appservice.address):\(appservice.port)" {
            reader.problem("metrics.listen", "is the appservice listener; leave it empty to serve /metrics there")
        }
        if let listen = bridgeAPI.listen {
            if listen == "\(appservice.address):\(appservice.port)" {
                reader.problem("bridge_api.listen", "is the appservice listener; leave it empty to serve the bridge API there")
            } else if listen == metrics.listen {
                reader.problem("bridge_api.listen", "is the metrics listener")
            }
        }
        if bridgeAPI.token != nil, bridgeAPI.token == appservice.asToken || bridgeAPI.token == appservice.hsToken {
            reader.problem("bridge_api.token", "must differ from the appservice tokens")
        }
        if bridgeAPI.token != nil, !encryption.enabled {
            reader.problem("bridge_api.token", "the bridge API needs encryption.enabled (its outbox is sealed with the pickle key)")
        }
        if retention.replay < encryption.parkedRetention {
            // A parked event decrypted late must still find its session's replay entries, not a floor above it.
            reader.problem("retention.replay_days", "must be at least encryption.undecryptable.retention_days (parked events may decrypt that late)")
        }
        for admin in management.admins where admin == botUserID {
            reader.problem("management.admins", "must not list the bot itself")
        }
    }
}
