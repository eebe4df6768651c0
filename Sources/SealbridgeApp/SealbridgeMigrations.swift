import AppService
import Bridge
import Postgres
import Store

/// Every module's migrations, in one numbered list (versions are global).
///
/// 1–9: appservice front door; 10–19 and 30–39: crypto store; 20–29: bridge API (outbox). Later modules take the next free block.
public enum SealbridgeMigrations {
    public static let all: [Migration] = AppServiceMigrations.all + CryptoStoreMigrations.all + BridgeMigrations.all
}
