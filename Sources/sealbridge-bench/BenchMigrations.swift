import AppService
import Postgres
import Store

/// The daemon's schema (appservice and crypto tables), as `sealbridge migrate` creates it.
enum BenchMigrations {
    static let all: [Migration] = AppServiceMigrations.all + CryptoStoreMigrations.all
}
