import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Metrics

extension CryptoEngine {
    /// Asks for the keys parked events have waited for longer than `wait`: one request per session
    /// (again after `reaskAfter` while its events still wait), recorded before it is sent so that
    /// only its answer is taken (``CryptoMachine/planKeyRequest(for:)``). Each request commits under
    /// the lock; the homeserver is called outside it.
    ///
    /// - Returns: How many requests were sent.
    @discardableResult
    public func requestRoomKeys(waitingLongerThan wait: TimeInterval, reaskAfter: TimeInterval = 3600, limit: Int = 50, now: Date = Date())
        async throws -> Int
    {
        let due = try await store.keyRequestsDue(
            parkedBefore: now.addingTimeInterval(-wait), askedBefore: now.addingTimeInterval(-reaskAfter),
            excluding: await unaskable.current(now: now), limit: limit)
        var sent = 0
        for parked in due {
            if try await requestRoomKey(for: parked) {
                sent += 1
            } else {
                await unaskable.skip(parked.sessionID, now: now)
            }
        }
        return sent
    }

    /// Asks (again) for the key of the session `sessionID` in `roomID`, for the events parked there
    /// (the `request` management command).
    ///
    /// - Returns: Whether a request was sent: false when no event waits for that session, or nobody
    ///   can be asked.
    public func requestRoomKey(roomID: RoomID, sessionID: String) async throws -> Bool {
        guard let parked = try await store.parkedEvents(sessionIDs: [sessionID]).first(where: { $0.roomID == roomID }) else { return false }
        return try await requestRoomKey(for: parked)
    }

    func requestRoomKey(for parked: ParkedEvent) async throws -> Bool {
        // Only the sender's devices are asked, so they must be known: fetched first (outside the
        // lock, at most every 30 s per sender) when they are not, or are outdated.
        let outdated = try await store.trackedUsers([parked.sender])[parked.sender] ?? true
        let known = try await store.devices(userIDs: [parked.sender])[parked.sender] ?? []
        if outdated || known.isEmpty, let requester = try await machine.keyRequester(in: parked.roomID),
            !(await senderQueries.take([parked.sender])).isEmpty
        {
            let response = try await transport.queryKeys([parked.sender], as: requester.userID)
            try await commitKeysQuery(response, users: [parked.sender])
        }
        let planned = try await step { () -> (CryptoChanges, OutgoingKeyRequest?) in
            var changes = CryptoChanges()
            let request = try await machine.planKeyRequest(for: parked)
            if let request { changes.keyRequests = [request] }
            return (changes, request)
        }
        guard let request = planned else { return false }
        try await transport.sendToDevice(machine.keyRequestMessage(request), as: request.requester.userID, device: request.requester.deviceID)
        Counter(label: "sealbridge_key_requests_sent_total").increment()
        logger.info("asked for a missing room key", metadata: [
            "room_id": "\(request.roomID)", "session_id": "\(request.sessionID)", "sender": "\(request.senderUserID)",
            "devices": "\(request.recipients.count)",
        ])
        return true
    }

    /// Removes the outstanding requests among `sessionIDs` whose key arrived (from any source) and
    /// tells the devices asked that the request is withdrawn (`request_cancellation`).
    public func settleKeyRequests(_ sessionIDs: Set<String>) async throws {
        let settled = try await step { () -> (CryptoChanges, [OutgoingKeyRequest]) in
            var changes = CryptoChanges()
            changes.settledKeyRequests = try await machine.settledKeyRequests(sessionIDs: sessionIDs)
            return (changes, changes.settledKeyRequests)
        }
        for request in settled {
            try await transport.sendToDevice(
                machine.keyRequestMessage(request, cancel: true), as: request.requester.userID, device: request.requester.deviceID)
        }
    }
}

/// Sessions whose key could not be asked for lately (no local member with a device in the room, no
/// device of the sender known, or each asked too often this minute): left out of the rounds for a
/// minute, so that they never crowd out the sessions that can be asked. Bounded: entries expire.
actor UnaskableSessions {
    let backoff: TimeInterval
    private var until: [String: Date] = [:]

    init(backoff: TimeInterval = 60) {
        self.backoff = backoff
    }

    func current(now: Date) -> Set<String> {
        until = until.filter { $0.value > now }
        return Set(until.keys)
    }

    func skip(_ sessionID: String, now: Date) {
        until[sessionID] = now.addingTimeInterval(backoff)
    }
}
