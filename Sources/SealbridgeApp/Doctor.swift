import Bridge
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import SealbridgeConfig
import Store

/// `sealbridge doctor`: every self-check against a configuration, once, with what to change.
///
/// Read only, safe next to a running daemon. The checks that need the appservice listener (the
/// homeserver's ping, the to-device round trip, the bot's keys) are asked of the running daemon
/// (`POST /_sealbridge/self-checks`, behind the `hs_token`): it sends the probe from the bot to
/// itself and sees it arrive on its own transaction path. Without a running daemon they are
/// reported as not run, and doctor fails: answering the homeserver's transactions in the daemon's
/// place would take them (and the room keys they carry) away from it. See docs/self-checks.md.
public enum Doctor {
    /// How long doctor waits for one answer (a server that is down is retried until then).
    static let quick = Duration.seconds(10)

    /// One finding.
    public struct Finding: Sendable {
        public enum State: String, Sendable {
            case ok
            /// Worth knowing; does not fail doctor.
            case warning
            /// Something is wrong; doctor exits non-zero.
            case failed
        }

        public var check: String
        public var state: State
        public var detail: String
        public var fix: String?
    }

    /// Runs every check and prints each finding through `print`.
    ///
    /// - Parameter registrationFile: The registration file the homeserver loads; nil:
    ///   `self_checks.registration_file` from the configuration.
    /// - Returns: The findings; doctor fails when one is `failed`.
    public static func run(
        configuration: SealbridgeConfiguration, registrationFile: String?, print: @Sendable (String) -> Void
    ) async -> [Finding] {
        var findings: [Finding] = []
        func report(_ finding: Finding) {
            findings.append(finding)
            let label = finding.state == .ok ? "ok     " : finding.state == .warning ? "WARNING" : "FAILED "
            print("\(label) \(finding.check): \(finding.detail)")
            if let fix = finding.fix, finding.state != .ok { print("        fix: \(fix)") }
        }
        for finding in await database(configuration) { report(finding) }
        for finding in await homeserver(configuration) { report(finding) }
        let registration = SelfCheckResult.registration(configuration, file: registrationFile)
        report(Finding(
            check: "registration", state: registration.state == .failed ? .failed : registration.state == .ok ? .ok : .warning,
            detail: registration.detail, fix: registration.fix))
        for finding in await daemon(configuration) { report(finding) }
        return findings
    }

    /// Reachable, how the schema compares with this build's migrations, and whether the configured
    /// pickle keys open what the database holds (one connection for both).
    static func database(_ configuration: SealbridgeConfiguration) async -> [Finding] {
        let client = PostgresClient(configuration: PostgresConfiguration(connectionString: configuration.database.uri, poolSize: 1))
        let read = await Result { try await Migrator.appliedVersions(on: client) }
        var keys: Finding?
        if case .success(let applied) = read { keys = await storeKeys(configuration, applied: applied, client: client) }
        await client.close()
        switch read {
        case .failure(let error):
            return [Finding(
                check: "database", state: .failed, detail: "cannot query the database: \(error)",
                fix: "Sealbridge configuration: database.uri must reach PostgreSQL (host, port, user, password, database name)")]
        case .success(let applied):
            return [schema(applied)] + (keys.map { [$0] } ?? [])
        }
    }

    static func schema(_ applied: [Int]) -> Finding {
        let known = SealbridgeMigrations.all.map(\.version)
        let pending = Set(known).subtracting(applied).sorted()
        let unknown = Set(applied).subtracting(known).sorted()
        if !unknown.isEmpty {
            return Finding(
                check: "database", state: .failed,
                detail: "reachable; the schema has migrations this build does not know (\(unknown.map(String.init).joined(separator: ", "))): a newer Sealbridge migrated it",
                fix: "run the Sealbridge version that migrated this database (downgrades are refused)")
        }
        if !pending.isEmpty {
            return Finding(
                check: "database", state: .warning,
                detail: "reachable; \(pending.count) migration(s) not applied yet (\(pending.map(String.init).joined(separator: ", ")))",
                fix: "`sealbridge migrate --config …` (or start the daemon, which migrates first)")
        }
        return Finding(check: "database", state: .ok, detail: "reachable; schema up to date (version \(known.max() ?? 0))")
    }

    /// Whether the configured pickle keys open what the database holds: a key id listed in
    /// `sealbridge_store_keys` that the configuration lacks makes the daemon refuse to start
    /// (docs/rotation.md). Nil when encryption is off or the schema has no key list yet.
    static func storeKeys(_ configuration: SealbridgeConfiguration, applied: [Int], client: PostgresClient) async -> Finding? {
        guard configuration.encryption.enabled, applied.contains(PickleKeyRotation.registryVersion) else { return nil }
        let cipher: StoreCipher
        do {
            cipher = try PickleKeyRotation.configuredCipher(configuration)
        } catch {
            return Finding(check: "store keys", state: .failed, detail: "\(error)", fix: "encryption.pickle_key_file must hold the pickle key (docs/rotation.md)")
        }
        let missing: [String]
        do {
            missing = try await StoreKeyRegistry(client: client).missing(from: cipher)
        } catch {
            return Finding(check: "store keys", state: .warning, detail: "cannot read sealbridge_store_keys: \(error)", fix: nil)
        }
        guard missing.isEmpty else {
            return Finding(
                check: "store keys", state: .failed,
                detail: "\(PickleKeyRotation.missingKeys(missing, cipher: cipher)); the daemon will not start", fix: PickleKeyRotation.missingKeysFix)
        }
        let reads = cipher.keyIDs.count > 1 ? ", also reads \(cipher.keyIDs.dropFirst().joined(separator: ", "))" : ""
        return Finding(check: "store keys", state: .ok, detail: "writes under \(cipher.keyID)\(reads); every key id the database lists is configured")
    }

    /// Reachable, its versions, and whether it takes our `as_token` as the bot.
    static func homeserver(_ configuration: SealbridgeConfiguration) async -> [Finding] {
        var client = HomeserverClient(
            baseURL: configuration.homeserver.url, asToken: configuration.appservice.asToken ?? "", logger: Logger(label: "sealbridge.doctor"))
        client.maxAttempts = 1
        client.requestTimeout = quick
        var findings: [Finding] = []
        do {
            let versions = try await client.request(.GET, "/_matrix/client/versions")
            let list = versions["versions"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var server = "server version unknown (neither /_matrix/federation/v1/version nor /_synapse/admin/v1/server_version answered)"
            if let answer = try? await client.request(.GET, "/_matrix/federation/v1/version"),
                let name = answer["server"]?["name"]?.stringValue, let version = answer["server"]?["version"]?.stringValue
            {
                server = "\(name) \(version)"
            } else if let answer = try? await client.request(.GET, "/_synapse/admin/v1/server_version"),
                let version = answer["server_version"]?.stringValue
            {
                server = "Synapse \(version)"
            }
            findings.append(Finding(
                check: "homeserver", state: .ok,
                detail: "\(configuration.homeserver.url) answers; \(server); spec versions up to \(list.last ?? "none listed")"))
        } catch {
            return [Finding(
                check: "homeserver", state: .failed, detail: "\(configuration.homeserver.url) does not answer /_matrix/client/versions: \(error)",
                fix: "Sealbridge configuration: homeserver.url must be the homeserver's client-server API base URL")]
        }
        do {
            let whoami = try await client.request(.GET, "/_matrix/client/v3/account/whoami")
            let user = whoami["user_id"]?.stringValue ?? ""
            findings.append(user == configuration.botUserID
                ? Finding(check: "as_token", state: .ok, detail: "the homeserver knows appservice.as_token as \(user)")
                : Finding(
                    check: "as_token", state: .failed, detail: "the homeserver takes appservice.as_token as \(user), not the bot \(configuration.botUserID)",
                    fix: "registration file: sender_localpart: \"\(configuration.appservice.botLocalpart)\"; homeserver.server_name in the Sealbridge configuration must be the homeserver's server name"))
        } catch let error as HomeserverError where error.status == 401 || error.status == 403 {
            findings.append(Finding(
                check: "as_token", state: .failed, detail: "the homeserver refuses appservice.as_token (\(error.errcode ?? "\(error.status)"))",
                fix: "homeserver.yaml: app_service_config_files must list the registration file, whose as_token must be the configuration's appservice.as_token; then restart the homeserver"))
        } catch {
            findings.append(Finding(check: "as_token", state: .failed, detail: "whoami failed: \(error)", fix: "see the homeserver's log"))
        }
        return findings
    }

    /// The checks that need the running daemon: the homeserver's ping of it, then its self-checks.
    static func daemon(_ configuration: SealbridgeConfiguration) async -> [Finding] {
        let host = ["0.0.0.0", "::", ""].contains(configuration.appservice.address) ? "127.0.0.1" : configuration.appservice.address
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(configuration.appservice.port)"
        // The hs_token is what the daemon's own endpoint takes.
        var daemon = HomeserverClient(baseURL: url, asToken: configuration.appservice.hsToken ?? "", logger: Logger(label: "sealbridge.doctor"))
        daemon.maxAttempts = 1
        daemon.requestTimeout = quick
        var findings: [Finding] = []
        let notRun = "start it (`sealbridge run`) and run doctor again: the to-device round trip is observed by the daemon's own transaction path"
        do {
            let health = try await daemon.request(.GET, "/health")
            let status = health["status"]?.stringValue ?? "?"
            findings.append(Finding(check: "daemon", state: .ok, detail: "answers at \(url) (/health: \(status))"))
        } catch let error as HomeserverError where error.status == 503 {
            return [Finding(
                check: "daemon", state: .failed, detail: "answers at \(url) but is not serving (standby or database unavailable: \(error.message))",
                fix: "route to the active instance, or see its log")]
        } catch {
            return [Finding(
                check: "daemon", state: .failed, detail: "no Sealbridge daemon answers at \(url): the ping, to-device round trip and bot-key checks were not run",
                fix: notRun)]
        }
        findings.append(await ping(configuration))
        // A round waits up to the probe's timeout for the probe.
        daemon.requestTimeout = .seconds(Int64(configuration.selfChecks.toDeviceTimeout) + 30)
        do {
            let answer = try await daemon.request(.POST, "/_sealbridge/self-checks", body: [:])
            guard let report = SelfCheckReport(json: answer) else {
                return findings + [Finding(check: "self-checks", state: .failed, detail: "the daemon's answer is not a self-check report", fix: "run doctor from the same Sealbridge version as the daemon")]
            }
            for result in report.results {
                findings.append(Finding(
                    check: result.name.rawValue, state: result.state == .failed ? .failed : result.state == .ok ? .ok : .warning,
                    detail: "(daemon) " + result.detail, fix: result.fix))
            }
        } catch let error as HomeserverError where error.status == 404 {
            findings.append(Finding(
                check: "self-checks", state: .failed, detail: "the daemon does not run self-checks (self_checks.enabled is false, or encryption is off)",
                fix: "Sealbridge configuration: self_checks: enabled: true, then restart the daemon"))
        } catch {
            findings.append(Finding(check: "self-checks", state: .failed, detail: "the daemon's self-checks failed to answer: \(error)", fix: "see the daemon's log"))
        }
        return findings
    }

    /// `POST /_matrix/client/v1/appservice/{id}/ping`: the homeserver calls the registration's `url` with
    /// its `hs_token`, so this proves the URL and the token the daemon checks.
    static func ping(_ configuration: SealbridgeConfiguration) async -> Finding {
        var client = HomeserverClient(
            baseURL: configuration.homeserver.url, asToken: configuration.appservice.asToken ?? "", logger: Logger(label: "sealbridge.doctor"))
        client.maxAttempts = 1
        client.requestTimeout = quick
        do {
            let answer = try await client.request(
                .POST, "/_matrix/client/v1/appservice/\(HomeserverClient.encode(configuration.appservice.id))/ping",
                body: ["transaction_id": .string("sealbridge-doctor-\(Int(Date().timeIntervalSince1970))")])
            return Finding(
                check: "ping", state: .ok, detail: "the homeserver reached the daemon with the hs_token (\(answer["duration_ms"]?.integerValue ?? 0) ms)")
        } catch let error as HomeserverError {
            return Finding(
                check: "ping", state: .failed, detail: "the homeserver could not ping the appservice: \(error.errcode ?? "") \(error.message)",
                fix: "registration file: url: \"\(configuration.appservice.publicURL)\" and hs_token: the configuration's appservice.hs_token, reachable from the homeserver; then restart the homeserver")
        } catch {
            return Finding(check: "ping", state: .failed, detail: "\(error)", fix: "see the homeserver's log")
        }
    }
}

extension Result where Failure == any Error {
    /// `Result(catching:)` for async work.
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
