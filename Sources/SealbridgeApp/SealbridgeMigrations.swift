import AppService
import Postgres

/// Every module's migrations, in one numbered list (versions are global).
///
/// 1–9: appservice front door. Later modules take the next free block.
public enum SealbridgeMigrations {
    public static let all: [Migration] = AppServiceMigrations.all
}
