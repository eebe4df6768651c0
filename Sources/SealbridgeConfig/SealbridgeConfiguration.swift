import Foundation

/// Sealbridge's configuration, mirroring `Config/config.example.yaml` key for key.
public struct SealbridgeConfiguration: Sendable {
    public struct Homeserver: Sendable {
        /// Client-server API base URL, e.g. `http://127.0.0.1:8008`.
        public var url: String
        /// The server name in user ids (`@bot:<server_name>`).
        public var serverName: String
    }

    public struct AppService: Sendable {
        public var id: String
        /// Listen address and port for the homeserver's pushes.
        public var address: String
        public var port: Int
        /// How the homeserver reaches us (goes into the registration's `url`).
        public var publicURL: String
        public var asToken: String?
        public var hsToken: String?
        public var botLocalpart: String
        public var botDisplayName: String
        /// Puppet localparts, with `{id}` standing for the remote network's id.
        public var puppetLocalpartTemplate: String
        /// Regex of the puppet namespace when the operator sets one; otherwise derived from the template.
        public var namespaceRegexOverride: String?
        /// Largest transaction body accepted, in bytes.
        public var maxBodySize: Int
        /// Where transactions are written (sealed, fsync'd) while the database is unavailable, to be
        /// applied in order when it is back.
        public var journalPath: String
        /// How long a transaction is held while the database is unavailable before it is journaled.
        public var holdSeconds: Int
        /// Attempts at a transaction that fails for a reason other than the database before it is
        /// quarantined (answered 200, kept sealed for `quarantine retry`).
        public var poisonAttempts: Int
    }

    public struct Database: Sendable {
        /// libpq URI or keyword string; may contain a password, so it is a secret.
        public var uri: String
        public var poolSize: Int
        /// Longest a single statement may run (`statement_timeout`), in milliseconds; 0: no limit.
        public var statementTimeoutMilliseconds: Int
    }

    /// The fewest pool connections one transaction can be processed with: the transaction's own
    /// connection, one for the crypto store's reads during it, one for the bridge API or a
    /// follow-up step that commits meanwhile, and one spare for `/health` and `status`.
    public static let minimumPoolSize = 4

    /// The weakest device, judged by cross-signing (MSC4153), that gets room keys
    /// (`encryption.sharing_policy`) or whose events reach the bridge logic (`encryption.accept_from`).
    public enum TrustPolicy: String, Sendable, CaseIterable {
        /// Every device, cross-signed or not (matrix-nio and other clients without cross-signing).
        case all
        /// Devices cross-signed by their owner's pinned (or admin-trusted) identity.
        case crossSigned = "cross_signed"
        /// Devices of users an admin vouched for with `trust @user FINGERPRINT`.
        case verified

        /// Reads a policy, also under the names earlier versions used for `sharing_policy`.
        public init?(configValue: String) {
            switch configValue {
            case "all_devices": self = .all
            case "cross_signed_only": self = .crossSigned
            default: self.init(rawValue: configValue)
            }
        }
    }

    public struct Encryption: Sendable {
        public var enabled: Bool
        /// The secret that keys at rest are derived from (HKDF); ≥ 32 bytes of entropy.
        public var pickleKey: String?
        /// Earlier pickle keys (`previous_pickle_key_files`, read from their files): rows under them are
        /// still read, never written, while `sealbridge rotate-pickle-key` moves them to ``pickleKey``.
        public var previousPickleKeys: [String] = []
        /// The bot's secret storage recovery key (as `sealbridge recovery-key` printed it): restores
        /// the bot's cross-signing identity when the database has lost it. nil: none configured.
        public var recoveryKey: String?
        public var rotationPeriodMilliseconds: Int
        public var rotationMessages: Int
        public var sharingPolicy: TrustPolicy
        public var acceptFrom: TrustPolicy
        /// Seconds an event waits for its key before the bridge logic is told it is undecryptable.
        public var undecryptableAfter: TimeInterval
        /// How long parked events are kept (and can still be decrypted late), in seconds.
        public var parkedRetention: TimeInterval
        /// Seconds a parked event waits before its key is asked for (`m.room_key_request`); nil: never asked.
        public var keyRequestAfter: TimeInterval? = 10
        public var crossSigning: CrossSigning
    }

    /// The bot's and puppets' own cross-signing identities (MSC4153: strict clients share keys only
    /// with cross-signed devices).
    public struct CrossSigning: Sendable {
        /// Publish an identity for every local user and sign its device.
        public var enabled: Bool
        /// How many existing local users the startup backfill publishes per second.
        public var backfillPerSecond: Int

        public init(enabled: Bool = true, backfillPerSecond: Int = 20) {
            self.enabled = enabled
            self.backfillPerSecond = backfillPerSecond
        }
    }

    public struct Management: Sendable {
        /// Users allowed to run commands in the management room.
        public var admins: [String]
        /// A fixed management room id; nil means admins open a DM with the bot.
        public var room: String?
        public var autoAcceptInvites: Bool
    }

    public struct Bridge: Sendable {
        /// Puppets accept invites only from users of these servers (the default: the homeserver's own).
        public var allowedInviterServers: [String]
    }

    public struct BridgeAPI: Sendable {
        /// The bearer token the bridge logic presents on `/_sealbridge/v1`; nil turns the API off.
        public var token: String?
        /// Where deliveries are POSTed instead of waiting for the long-poll; nil: long-poll only.
        public var webhookURL: String?
        /// Key of the `X-Sealbridge-Signature` HMAC-SHA256 over each webhook body.
        public var webhookSecret: String?
        /// `host:port` of a listener of its own for `/_sealbridge/v1` (then not served on the appservice
        /// listener, which the homeserver must reach while the bridge logic may be elsewhere); nil: the
        /// appservice listener.
        public var listen: String? = nil
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public struct Logging: Sendable {
        /// trace, debug, info, notice, warning, error or critical.
        public var level: String
        public var format: LogFormat
    }

    public struct Metrics: Sendable {
        public var enabled: Bool
        /// `host:port` for a separate metrics listener; nil serves `/metrics` on the appservice listener.
        public var listen: String?
        /// When set, `/metrics` requires `Authorization: Bearer <token>`.
        public var token: String?
    }

    public var homeserver: Homeserver
    public var appservice: AppService
    public var database: Database
    public var encryption: Encryption
    public var management: Management
    public var bridge: Bridge
    public var bridgeAPI: BridgeAPI
    public var logging: Logging
    public var metrics: Metrics
    public var retention: Retention
    /// The daemon's periodic self-checks (docs/self-checks.md); also what `sealbridge doctor` runs.
    public var selfChecks = SelfChecks()

    /// `self_checks`: whether the homeserver really pushes what an encrypted appservice needs.
    public struct SelfChecks: Sendable {
        /// Run the checks at startup and every ``interval``.
        public var enabled: Bool
        /// Time between two rounds, in seconds.
        public var interval: TimeInterval
        /// How long a self-addressed to-device message may take to come back in a transaction.
        public var toDeviceTimeout: TimeInterval
        /// The registration file the homeserver was given, to compare with this configuration; nil: not compared.
        public var registrationFile: String?

        public init(enabled: Bool = true, interval: TimeInterval = 300, toDeviceTimeout: TimeInterval = 30, registrationFile: String? = nil) {
            self.enabled = enabled
            self.interval = interval
            self.toDeviceTimeout = toDeviceTimeout
            self.registrationFile = registrationFile
        }
    }

    /// How long rows that only grow are kept (the housekeeping service prunes the rest in batches).
    public struct Retention: Sendable {
        /// Time between two housekeeping rounds.
        public var interval: TimeInterval
        /// Committed appservice txn ids and their log rows.
        public var transactions: TimeInterval
        /// Quarantine entries that were retried successfully (unresolved ones stay).
        public var resolvedQuarantine: TimeInterval
        /// Olm sessions kept per (local device, remote key), newest first; older ones go after a day unused.
        public var olmSessionsPerKey: Int
        /// Withheld notices.
        public var withheld: TimeInterval
        /// Megolm replay ledger entries; each pruned session keeps a floor (an index below it is a replay).
        public var replay: TimeInterval
        /// Replaced outbound sessions kept to answer their recipients' key requests.
        public var retiredSessions: TimeInterval = 7 * 86_400
    }
}

extension SealbridgeConfiguration {
    /// The puppet user namespace regex for the registration.
    public var puppetNamespaceRegex: String {
        appservice.namespaceRegexOverride
            ?? Registration.namespaceRegex(template: appservice.puppetLocalpartTemplate, serverName: homeserver.serverName)
    }

    /// The bot's user id.
    public var botUserID: String { "@\(appservice.botLocalpart):\(homeserver.serverName)" }

    /// A summary without secrets, for `check-config` and the startup log.
    public var summary: String {
        """
        homeserver \(homeserver.url) (\(homeserver.serverName)), appservice "\(appservice.id)" on \(appservice.address):\(appservice.port), \
        bot \(botUserID), puppets \(appservice.puppetLocalpartTemplate), database pool \(database.poolSize), \
        encryption \(encryption.enabled ? "on" : "off")\(encryption.previousPickleKeys.isEmpty ? "" : " (\(encryption.previousPickleKeys.count) previous pickle key(s) still read)"), bridge API \(bridgeAPI.token == nil ? "off" : "on"), \(management.admins.count) admin(s), logging \(logging.level)/\(logging.format.rawValue)
        """
    }
}
