import Primitives
import Testing

@Suite struct SecureRandomTests {
    @Test(arguments: [0, 1, 12, 32, 1000])
    func returnsRequestedLength(count: Int) {
        #expect(SecureRandom.bytes(count: count).count == count)
    }

    @Test func drawsDifferAndAreNotZero() {
        let first = SecureRandom.bytes(count: 32)
        let second = SecureRandom.bytes(count: 32)
        #expect(first != second)
        #expect(first != [UInt8](repeating: 0, count: 32))
    }

    /// A crude sanity check that every byte value shows up, which a stuck or short-filled buffer would fail.
    @Test func coversByteValues() {
        let sample = SecureRandom.bytes(count: 64 * 1024)
        #expect(Set(sample).count == 256)
    }
}
