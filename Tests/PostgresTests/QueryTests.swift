import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Queries and types")
struct QueryTests {
    @Test("interpolated values are bound, not spliced: an injection attempt is stored verbatim")
    func bindingNotSplicing() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("bind")
        try await client.execute("CREATE TABLE \(unescaped: table) (name text)")
        let hostile = "x'); DROP TABLE \(table); --"
        let query: PostgresQuery = "INSERT INTO \(unescaped: table) (name) VALUES (\(hostile))"
        #expect(query.sql == "INSERT INTO \(table) (name) VALUES ($1)")
        try await client.execute(query)
        let rows = try await client.query("SELECT name FROM \(unescaped: table)")
        #expect(try rows.map { try $0.decode(String.self, "name") } == [hostile])
        await client.close()
    }

    @Test("statement_timeout is set on every connection; a text parameter with a NUL is refused before it is sent, bytea takes it")
    func timeoutAndNUL() async throws {
        let client = PostgresClient(configuration: PostgresConfiguration(
            connectionString: try TestDatabase.url(), poolSize: 1, statementTimeout: .milliseconds(1234)))
        #expect(try await client.query("SHOW statement_timeout").first?.decode(String.self, "statement_timeout") == "1234ms")
        await #expect { try await client.query("SELECT pg_sleep(3)") } throws: { ($0 as? PostgresError)?.sqlState == "57014" }
        await #expect { try await client.query("SELECT \("a\u{0}b")::text AS t") } throws: { ($0 as? PostgresError)?.code == .unstorableText }
        let bytes = try await client.query("SELECT \(Array("a\u{0}b".utf8))::bytea AS b").first?.decode([UInt8].self, "b")
        #expect(bytes == [97, 0, 98])
        await client.close()
    }

    @Test("every type round trips, NULL included")
    func typeRoundTrip() async throws {
        let client = try TestDatabase.client()
        let bytes: [UInt8] = [0, 1, 2, 0, 255, 92, 120]
        let date = Date(timeIntervalSince1970: 1_795_000_000.125)
        let text = "héllo 日本 \"quoted\" \\ back"
        let row = try #require(try await client.query("""
            SELECT \(text)::text AS t, \(bytes)::bytea AS b, \(Int64.max)::int8 AS i8, \(Int32.min)::int4 AS i4,
                   \(42)::int8 AS i, \(true)::bool AS yes, \(false)::bool AS no, \(date)::timestamptz AS ts,
                   \(PostgresJSONB(#"{"a": [1, 2]}"#))::jsonb AS j, \(String?.none)::text AS missing,
                   '1999-12-31 23:59:59+00'::timestamptz AS whole_second
            """).first)
        #expect(try row.decode(String.self, "t") == text)
        #expect(try row.decode([UInt8].self, "b") == bytes)
        #expect(try row.decode(Int64.self, "i8") == Int64.max)
        #expect(try row.decode(Int32.self, "i4") == Int32.min)
        #expect(try row.decode(Int.self, "i") == 42)
        #expect(try row.decode(Bool.self, "yes") == true)
        #expect(try row.decode(Bool.self, "no") == false)
        #expect(abs(try row.decode(Date.self, "ts").timeIntervalSince(date)) < 0.001)
        #expect(try row.decode(Date.self, "whole_second") == Date(timeIntervalSince1970: 946_684_799))
        #expect(try row.decode(PostgresJSONB.self, "j").json == #"{"a": [1, 2]}"#)
        #expect(try row.decode(String?.self, "missing") == nil)
        #expect(try row.decode(String?.self, "t") == text)
        await client.close()
    }

    @Test("a time read from PostgreSQL and bound again is the same microsecond (before 1970 too); the far years still bind")
    func timestampsToTheMicrosecond() async throws {
        let client = try TestDatabase.client()
        for literal in [
            "2026-11-29 07:58:12.123456+00", "2026-11-29 07:58:12.000001+00", "1969-12-31 23:59:59.999999+00", "1900-01-01 00:00:00.000001+00",
            "2000-02-29 12:00:00+00", "2100-02-28 23:59:59.5+00", "1970-01-01 00:00:00+00",
        ] {
            let read = try #require(try await client.query("SELECT \(literal)::timestamptz AS ts").first).decode(Date.self, "ts")
            let row = try #require(try await client.query(
                "SELECT \(read)::timestamptz = \(literal)::timestamptz AS same, \(read)::timestamptz::text AS text").first)
            let text = try row.decode(String.self, "text")
            #expect(try row.decode(Bool.self, "same"), "\(literal) came back as \(text)")
        }
        // Within one millisecond: a time one microsecond later, read back and bound again, is still
        // later (the key registry's "a daemon registered after the rotation started" rests on this).
        let first = try #require(try await client.query("SELECT clock_timestamp() AS t").first).decode(Date.self, "t")
        let later = try #require(try await client.query("SELECT \(first)::timestamptz + interval '1 microsecond' AS t").first).decode(Date.self, "t")
        #expect(try await client.query("SELECT \(first)::timestamptz < \(later)::timestamptz AS earlier").first?.decode(Bool.self, "earlier") == true)
        // The first and last four-digit years; past them the ISO form still binds.
        for (date, literal) in [
            (Date(timeIntervalSince1970: -62_135_596_800 + 0.5), "0001-01-01 00:00:00.5+00"),
            (Date(timeIntervalSince1970: 253_402_300_799), "9999-12-31 23:59:59+00"),
            (Date(timeIntervalSince1970: 253_402_300_800 + 86_400), "10000-01-02 00:00:00+00"),
        ] {
            #expect(try await client.query("SELECT \(date)::timestamptz = \(literal)::timestamptz AS same").first?.decode(Bool.self, "same") == true)
        }
        await client.close()
    }

    @Test("decoding errors name the column")
    func decodingErrors() async throws {
        let client = try TestDatabase.client()
        let row = try #require(try await client.query("SELECT 'abc'::text AS word, NULL::int8 AS nothing").first)
        #expect { try row.decode(Int.self, "word") } throws: { ($0 as? PostgresError)?.message.contains("word") == true }
        #expect { try row.decode(Int.self, "nothing") } throws: { ($0 as? PostgresError)?.message.contains("NULL") == true }
        #expect { try row.decode(Int.self, "absent") } throws: { ($0 as? PostgresError)?.code == .decoding }
        await client.close()
    }

    @Test("server errors carry SQLSTATE")
    func serverError() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("unique")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8 PRIMARY KEY)")
        try await client.execute("INSERT INTO \(unescaped: table) VALUES (\(1))")
        await #expect { try await client.execute("INSERT INTO \(unescaped: table) VALUES (\(1))") } throws: {
            ($0 as? PostgresError)?.sqlState == "23505"
        }
        // The connection that saw the error is still usable.
        #expect(await client.ping())
        await client.close()
    }

    @Test("a password never appears in the redacted connection string")
    func redaction() {
        let uri = PostgresConfiguration(connectionString: "postgresql://sealbridge:s3cret@db:5432/x?password=other&sslmode=require")
        #expect(!uri.redactedDescription.contains("s3cret"))
        #expect(!uri.redactedDescription.contains("other"))
        let keywords = PostgresConfiguration(connectionString: "host=db password=s3cret dbname=x")
        #expect(keywords.redactedDescription == "host=db password=*** dbname=x")
    }

    @Test("connecting to nothing fails with connectionFailed and a redacted reason")
    func connectionFailure() async throws {
        let client = PostgresClient(configuration: PostgresConfiguration(
            connectionString: "postgresql://u:hunter2@127.0.0.1:1/x?connect_timeout=1", poolSize: 1, connectTimeout: .milliseconds(300)))
        await #expect { try await client.query("SELECT 1") } throws: {
            guard let error = $0 as? PostgresError else { return false }
            return error.code == .connectionFailed && !error.message.contains("hunter2")
        }
        await client.close()
    }

    @Test("a text array binds any text: quotes, backslashes, commas, braces, NULL-looking words, empty strings, unicode; a NUL is refused")
    func textArrayRoundTrip() async throws {
        let client = try TestDatabase.client()
        let values = ["plain", "with \"quotes\"", "back\\slash", "a,b", "{braces}", "NULL", "", " spaced ", "émoji 🔐", "$event:server"]
        let rows = try await client.query("SELECT v FROM unnest(\(PostgresTextArray(values))) WITH ORDINALITY AS t(v, n) ORDER BY n")
        #expect(try rows.map { try $0.decode(String.self, "v") } == values)
        await #expect { try await client.query("SELECT v FROM unnest(\(PostgresTextArray(["a\u{0}b"]))) AS t(v)") } throws: {
            ($0 as? PostgresError)?.code == .unstorableText
        }
        await client.close()
    }

    @Test("a bytea array binds any bytes in order: NUL, 0xff, empty, long; an empty array is an empty array")
    func byteaArrayRoundTrip() async throws {
        let client = try TestDatabase.client()
        let values: [[UInt8]] = [[0], [0xff, 0x00, 0x5c, 0x22, 0x7b], [], Array(repeating: 0xab, count: 70_000), Array("plain".utf8)]
        let rows = try await client.query("SELECT v FROM unnest(\(PostgresByteaArray(values))) WITH ORDINALITY AS t(v, n) ORDER BY n")
        #expect(try rows.map { try $0.decode([UInt8].self, "v") } == values)
        let empty = try await client.query("SELECT cardinality(\(PostgresByteaArray([]))) AS n")
        #expect(try empty.first?.decode(Int.self, "n") == 0)
        await client.close()
    }
}
