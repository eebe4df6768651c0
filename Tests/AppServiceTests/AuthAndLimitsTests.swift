import AppService
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Front door: authentication, limits, malformed bodies")
struct AuthAndLimitsTests {
    @Test("missing token → 401 M_MISSING_TOKEN, wrong → 403 M_FORBIDDEN, bearer and legacy query parameter accepted")
    func authentication() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            for path in ["/_matrix/app/v1/transactions/a1", "/transactions/a1"] {
                try await client.execute(uri: path, method: .put, body: body("{\"events\":[]}")) { response in
                    #expect(response.status == .unauthorized)
                    #expect(json(response.body)["errcode"] == "M_MISSING_TOKEN")
                }
                try await client.execute(uri: path, method: .put, headers: [.authorization: "Bearer wrong"], body: body("{\"events\":[]}")) { response in
                    #expect(response.status == .forbidden)
                    #expect(json(response.body)["errcode"] == "M_FORBIDDEN")
                }
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/a1?access_token=nope", method: .put, body: body("{}")) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/q1?access_token=\(hsToken)", method: .put, body: body("{\"events\":[]}")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/b1", method: .put, headers: authorized, body: body("{\"events\":[]}")) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "{}")
            }
            try await client.execute(uri: "/transactions/legacy1", method: .put, headers: authorized, body: body("{\"events\":[]}")) { response in
                #expect(response.status == .ok)
            }
            // Other endpoints need the token too.
            try await client.execute(uri: "/_matrix/app/v1/ping", method: .post, body: body("{}")) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/_matrix/app/v1/users/@x:localhost", method: .get, headers: [.authorization: "Bearer bad"]) {
                #expect($0.status == .forbidden)
            }
        }
        #expect(try await harness.committedTransactionIDs() == ["q1", "b1", "legacy1"])
        await harness.close()
    }

    @Test("a body over the limit → 413 M_TOO_LARGE and nothing stored")
    func sizeLimit() async throws {
        let harness = try await Harness.make(maxBodySize: 2048)
        let big = "{\"events\":[{\"type\":\"m.room.message\",\"content\":{\"body\":\"" + String(repeating: "a", count: 4096) + "\"}}]}"
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/big", method: .put, headers: authorized, body: body(big)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(json(response.body)["errcode"] == "M_TOO_LARGE")
            }
        }
        #expect(try await harness.committedTransactionIDs().isEmpty)
        await harness.close()
    }

    @Test("not JSON → 400 M_NOT_JSON; not an object → 400 M_BAD_JSON; nothing stored")
    func malformed() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/m1", method: .put, headers: authorized, body: body("{\"events\":[")) { response in
                #expect(response.status == .badRequest)
                #expect(json(response.body)["errcode"] == "M_NOT_JSON")
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/m2", method: .put, headers: authorized, body: body("[{\"events\":[]}]")) { response in
                #expect(response.status == .badRequest)
                #expect(json(response.body)["errcode"] == "M_BAD_JSON")
                #expect(json(response.body)["error"]?.contains("object") == true)
            }
        }
        #expect(try await harness.committedTransactionIDs().isEmpty)
        await harness.close()
    }

    @Test("a section of the wrong shape is left out and counted, not refused: a refusal would be retried forever")
    func wrongShapeAccepted() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/w1", method: .put, headers: authorized, body: body("{\"events\":{}}")) { response in
                #expect(response.status == .ok)
            }
        }
        let row = try #require(try await harness.client.query("SELECT skipped::text AS skipped FROM sealbridge_transaction_log WHERE txn_id = \("w1")").first)
        #expect(try row.decode(String.self, "skipped") == #"{"wrong_section_type": 1}"#)
        await harness.close()
    }

    @Test("/metrics behind metrics.token: no token 401, a wrong one 403, one in the URL 400, the header 200; open without one")
    func metricsToken() async throws {
        let token = String(repeating: "m", count: 40)
        for protected in [true, false] {
            let router = Router()
            AppServiceEndpoints.registerMetrics({ Array("sealbridge_up 1\n".utf8) }, token: protected ? token : nil, on: router)
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == (protected ? .unauthorized : .ok)) }
                try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong"]) {
                    #expect($0.status == (protected ? .forbidden : .ok))
                }
                try await client.execute(uri: "/metrics?access_token=\(token)", method: .get) { #expect($0.status == (protected ? .badRequest : .ok)) }
                try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "sealbridge_up 1\n")
                }
            }
        }
    }

    @Test("ping, user and alias queries, health")
    func otherEndpoints() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/ping", method: .post, headers: authorized, body: body("{\"transaction_id\":\"t\"}")) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/_matrix/app/v1/users/@nobody:localhost", method: .get, headers: authorized) { response in
                #expect(response.status == .notFound)
                #expect(json(response.body)["errcode"] == "M_NOT_FOUND")
            }
            try await client.execute(uri: "/_matrix/app/v1/rooms/%23room:localhost", method: .get, headers: authorized) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("ok"))
            }
        }
        await harness.close()
        // With the database gone, health says so.
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .serviceUnavailable) }
        }
    }
}
