/// A bounded map, least recently used entries evicted first (an eighth at a time, so eviction cost
/// stays amortized).
struct LRUCache<Key: Hashable, Value> {
    let capacity: Int
    private var entries: [Key: (value: Value, used: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { entries.count }

    mutating func get(_ key: Key) -> Value? {
        guard let index = entries.index(forKey: key) else { return nil }
        clock += 1
        entries.values[index].used = clock  // one hash of the key, not two
        return entries.values[index].value
    }

    mutating func put(_ key: Key, _ value: Value) {
        guard capacity > 0 else { return }
        clock += 1
        if entries[key] == nil, entries.count >= capacity {
            let victims = entries.sorted { $0.value.used < $1.value.used }.prefix(max(1, capacity / 8))
            for victim in victims { entries[victim.key] = nil }
        }
        entries[key] = (value, clock)
    }

    mutating func remove(_ key: Key) { entries[key] = nil }
}
