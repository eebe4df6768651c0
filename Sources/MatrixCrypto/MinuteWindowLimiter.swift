import Foundation

/// At most `limit` takes per key in each minute's window: a peer that floods (key requests from one
/// user, requests to one device) costs a bounded amount of work. Bounded itself: past 10,000 keys,
/// windows older than a minute are dropped.
struct MinuteWindowLimiter<Key: Hashable> {
    private var windows: [Key: (since: Date, count: Int)] = [:]

    /// Counts one take for `key` at `now` and says whether it is within `limit` for this minute.
    mutating func take(_ key: Key, limit: Int, now: Date) -> Bool {
        if windows.count >= 10_000 { windows = windows.filter { now.timeIntervalSince($0.value.since) < 60 } }
        var window = windows[key] ?? (since: now, count: 0)
        if now.timeIntervalSince(window.since) >= 60 { window = (since: now, count: 0) }
        guard window.count < limit else { return false }
        window.count += 1
        windows[key] = window
        return true
    }
}
