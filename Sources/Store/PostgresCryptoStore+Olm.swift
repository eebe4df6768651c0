import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Olm sessions between local devices and remote keys, and wedged-session recoveries.
extension PostgresCryptoStore {
    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) async throws -> [StoredOlmSession] {
        try await client.query("""
            SELECT session_id, pickle, last_used FROM sealbridge_olm_sessions
            WHERE local_user_id = \(localUserID.rawValue) AND local_device_id = \(localDeviceID.rawValue) AND sender_key = \(senderKey)
            ORDER BY last_used DESC, session_id DESC
            """).map { row in
            StoredOlmSession(
                localUserID: localUserID, localDeviceID: localDeviceID, senderKey: senderKey,
                sessionID: try row.decode(String.self, "session_id"), pickle: try row.decode(String.self, "pickle"),
                lastUsed: try row.decode(Date.self, "last_used"))
        }
    }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, remoteKeys: [String]) async throws -> [String: [StoredOlmSession]] {
        guard !remoteKeys.isEmpty else { return [:] }
        var found: [String: [StoredOlmSession]] = [:]
        for row in try await client.query("""
            SELECT sender_key, session_id, pickle, last_used FROM sealbridge_olm_sessions
            WHERE local_user_id = \(localUserID.rawValue) AND local_device_id = \(localDeviceID.rawValue)
              AND sender_key = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(remoteKeys)))))
            ORDER BY last_used DESC, session_id DESC
            """) {
            let key = try row.decode(String.self, "sender_key")
            found[key, default: []].append(StoredOlmSession(
                localUserID: localUserID, localDeviceID: localDeviceID, senderKey: key, sessionID: try row.decode(String.self, "session_id"),
                pickle: try row.decode(String.self, "pickle"), lastUsed: try row.decode(Date.self, "last_used")))
        }
        return found
    }

    public func olmSessions(senderKey: String, localDevices: [DeviceRef]) async throws -> [DeviceRef: [StoredOlmSession]] {
        guard !localDevices.isEmpty else { return [:] }
        let users = PostgresTextArray(localDevices.map(\.userID.rawValue)), devices = PostgresTextArray(localDevices.map(\.deviceID.rawValue))
        var found: [DeviceRef: [StoredOlmSession]] = [:]
        for row in try await client.query("""
            SELECT local_user_id, local_device_id, session_id, pickle, last_used FROM sealbridge_olm_sessions
            WHERE sender_key = \(senderKey) AND (local_user_id, local_device_id) IN (SELECT u, d FROM unnest(\(users), \(devices)) AS t(u, d))
            ORDER BY last_used DESC, session_id DESC
            """) {
            let device = DeviceRef(
                userID: try UserID(try row.decode(String.self, "local_user_id")), deviceID: try DeviceID(try row.decode(String.self, "local_device_id")))
            found[device, default: []].append(StoredOlmSession(
                localUserID: device.userID, localDeviceID: device.deviceID, senderKey: senderKey, sessionID: try row.decode(String.self, "session_id"),
                pickle: try row.decode(String.self, "pickle"), lastUsed: try row.decode(Date.self, "last_used")))
        }
        return found
    }

    public func lastOlmRecovery(localUserID: UserID, remoteKey: String) async throws -> Date? {
        try await client.query("""
            SELECT recovered_at FROM sealbridge_olm_recoveries WHERE local_user_id = \(localUserID.rawValue) AND remote_key = \(remoteKey)
            """).first.map { try $0.decode(Date.self, "recovered_at") }
    }

    static func olmStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        // One statement for the step's sessions (a hundred room keys to puppets advance a hundred); the
        // last state of a session in the step is the one written (an upsert may not touch a row twice).
        var seen = Set<OlmSessionRow>()
        let sessions = changes.olmSessions.reversed().filter {
            seen.insert(OlmSessionRow(localUserID: $0.localUserID, localDeviceID: $0.localDeviceID, senderKey: $0.senderKey, sessionID: $0.sessionID)).inserted
        }
        if !sessions.isEmpty {
            let users = PostgresTextArray(sessions.map(\.localUserID.rawValue)), devices = PostgresTextArray(sessions.map(\.localDeviceID.rawValue))
            let keys = PostgresTextArray(sessions.map(\.senderKey)), ids = PostgresTextArray(sessions.map(\.sessionID))
            let pickles = PostgresTextArray(sessions.map(\.pickle))
            // Seconds since 1970 as text: PostgreSQL keeps microseconds.
            let used = PostgresTextArray(sessions.map { String($0.lastUsed.timeIntervalSince1970) })
            statements.append("""
                INSERT INTO sealbridge_olm_sessions (local_user_id, local_device_id, sender_key, session_id, pickle, last_used)
                SELECT u, d, k, i, p, to_timestamp(t::double precision) FROM unnest(\(users), \(devices), \(keys), \(ids), \(pickles), \(used)) AS r(u, d, k, i, p, t)
                ON CONFLICT (local_user_id, local_device_id, sender_key, session_id)
                DO UPDATE SET pickle = EXCLUDED.pickle, last_used = EXCLUDED.last_used
                """)
        }
        for recovery in changes.olmRecoveries {
            statements.append("""
                INSERT INTO sealbridge_olm_recoveries (local_user_id, remote_key, recovered_at)
                VALUES (\(recovery.localUserID.rawValue), \(recovery.remoteKey), \(recovery.at))
                ON CONFLICT (local_user_id, remote_key) DO UPDATE SET recovered_at = EXCLUDED.recovered_at
                """)
        }
        return statements
    }
}

/// What an Olm session row is unique by.
struct OlmSessionRow: Hashable {
    var localUserID: UserID
    var localDeviceID: DeviceID
    var senderKey: String
    var sessionID: String
}
