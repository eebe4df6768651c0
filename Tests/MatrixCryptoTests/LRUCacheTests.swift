@testable import MatrixCrypto
import Testing

@Suite("The bounded least-recently-used cache")
struct LRUCacheTests {
    @Test("a read makes an entry recently used: eviction takes the least recently read or written")
    func readRefreshes() {
        var cache = LRUCache<Int, String>(capacity: 8)
        for key in 0..<8 { cache.put(key, "v\(key)") }
        #expect(cache.get(0) == "v0")
        // Full: the next new key evicts an eighth (one entry), the least recently used: 1, not 0.
        cache.put(8, "v8")
        #expect(cache.count == 8)
        #expect(cache.get(1) == nil)
        #expect(cache.get(0) == "v0" && cache.get(8) == "v8")
        #expect(cache.get(42) == nil)
    }

    @Test("writing a key that is there replaces its value without evicting; removed keys are gone")
    func overwriteAndRemove() {
        var cache = LRUCache<String, Int>(capacity: 2)
        cache.put("a", 1)
        cache.put("b", 2)
        cache.put("a", 3)
        #expect(cache.count == 2 && cache.get("a") == 3 && cache.get("b") == 2)
        cache.remove("a")
        #expect(cache.get("a") == nil && cache.count == 1)
        var none = LRUCache<String, Int>(capacity: 0)
        none.put("x", 1)
        #expect(none.get("x") == nil)
    }
}
