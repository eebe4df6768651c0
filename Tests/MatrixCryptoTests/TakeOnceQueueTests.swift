import Foundation
@testable import MatrixCrypto
import Synchronization
import Testing

@Suite("The take-once queue of a parallel decryption step")
struct TakeOnceQueueTests {
    /// Runs `body` on `count` threads of their own (not the cooperative pool, which may have fewer
    /// threads than takers) and waits for all of them.
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                body(index)
                group.leave()
            }.start()
        }
        group.wait()
    }

    @Test("each item goes to exactly one of many concurrent takers, and every item is taken")
    func exactlyOnce() {
        let queue = TakeOnceQueue(Array(0..<20_000))
        let taken = Mutex<[[Int]]>(Array(repeating: [], count: 4))
        Self.onThreads(4) { taker in
            var mine: [Int] = []
            while let item = queue.next() { mine.append(item) }
            taken.withLock { $0[taker] = mine }
        }
        let all = taken.withLock { $0 }.flatMap { $0 }
        #expect(all.count == 20_000)
        #expect(Set(all) == Set(0..<20_000))
        #expect(queue.next() == nil)
        // Each taker sees its items in queue order.
        #expect(taken.withLock { $0 }.allSatisfy { $0 == $0.sorted() })
    }

    @Test("a taker held up takes less: the others take what it would have (fixed halves would give it half)")
    func slowTakerTakesLess() {
        let queue = TakeOnceQueue(Array(0..<40))
        let counts = Mutex<[Int]>([0, 0])
        Self.onThreads(2) { taker in
            var count = 0
            while queue.next() != nil {
                count += 1
                // Taker 0 is slowed, as a core shared with PostgreSQL is.
                if taker == 0 { Thread.sleep(forTimeInterval: 0.01) }
            }
            counts.withLock { $0[taker] = count }
        }
        let (slow, fast) = counts.withLock { ($0[0], $0[1]) }
        #expect(slow + fast == 40)
        #expect(slow < 20, "the slowed taker took \(slow) of 40")
    }

    @Test("an empty queue gives nothing")
    func empty() {
        let queue = TakeOnceQueue<Int>([])
        #expect(queue.next() == nil)
        #expect(queue.next() == nil)
    }
}
