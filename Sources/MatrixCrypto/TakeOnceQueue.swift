import Synchronization

/// Items handed out one at a time, in order, to whichever task asks first (the lent sessions of one
/// parallel step).
///
/// The index is taken with one atomic increment, so each item goes to exactly one taker: the
/// exclusive loan ``LentSession`` relies on holds however the tasks are scheduled.
final class TakeOnceQueue<Item: Sendable>: Sendable {
    private let items: [Item]
    private let taken = Atomic<Int>(0)

    init(_ items: [Item]) {
        self.items = items
    }

    /// The next item no one has taken; nil once all are.
    func next() -> Item? {
        let index = taken.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < items.count ? items[index] : nil
    }
}
