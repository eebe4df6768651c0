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

    public func lastOlmRecovery(localUserID: UserID, remoteKey: String) async throws -> Date? {
        try await client.query("""
            SELECT recovered_at FROM sealbridge_olm_recoveries WHERE local_user_id = \(localUserID.rawValue) AND remote_key = \(remoteKey)
            """).first.map { try $0.decode(Date.self, "recovered_at") }
    }

    static func olmStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for session in changes.olmSessions {
            statements.append("""
                INSERT INTO sealbridge_olm_sessions (local_user_id, local_device_id, sender_key, session_id, pickle, last_used)
                VALUES (\(session.localUserID.rawValue), \(session.localDeviceID.rawValue), \(session.senderKey), \(session.sessionID),
                        \(session.pickle), \(session.lastUsed))
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
