import Foundation

/// When room events failed to decrypt, for `status` ("undecryptable events in the last hour").
/// Keeps at most a day of per-transaction counts in memory.
public actor UndecryptableLog {
    private var entries: [(at: Date, count: Int)] = []

    public init() {}

    public func record(_ count: Int, at date: Date = Date()) {
        entries.append((date, count))
        let horizon = date.addingTimeInterval(-86_400)
        if let first = entries.first, first.at < horizon { entries.removeAll { $0.at < horizon } }
    }

    public func count(since date: Date) -> Int {
        entries.filter { $0.at >= date }.reduce(0) { $0 + $1.count }
    }
}
