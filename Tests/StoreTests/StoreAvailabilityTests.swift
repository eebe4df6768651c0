import MatrixCrypto
import Postgres
import Store
import Testing

/// The machine fails a whole step only for a database that is away; PostgreSQL's errors say which.
@Suite("PostgreSQL errors: away or a bad row")
struct StoreAvailabilityTests {
    @Test("connection lost, failed, pool closed, server shutting down, fenced out: unavailable; a bad row or a refused statement: not")
    func classification() {
        func unavailable(_ error: PostgresError) -> Bool { (error as any StoreAvailabilityError).isStoreUnavailable }
        #expect(unavailable(PostgresError(code: .connectionLost, message: "")))
        #expect(unavailable(PostgresError(code: .connectionFailed, message: "")))
        #expect(unavailable(PostgresError(code: .poolClosed, message: "")))
        #expect(unavailable(PostgresError(code: .server, message: "", sqlState: "57P01")))
        #expect(unavailable(PostgresError(code: .fencedOut, message: "")))
        #expect(!unavailable(PostgresError(code: .decoding, message: "")))
        #expect(!unavailable(PostgresError(code: .server, message: "", sqlState: "23505")))
        #expect(!unavailable(PostgresError(code: .unstorableText, message: "")))
    }
}
