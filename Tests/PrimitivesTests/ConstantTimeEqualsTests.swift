import Primitives
import Testing

@Suite struct ConstantTimeEqualsTests {
    @Test func equalArraysAreEqual() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(constantTimeEquals([], []))
    }

    @Test func anyDifferingByteIsUnequal() {
        let base = [UInt8](0..<32)
        for index in base.indices {
            var other = base
            other[index] ^= 0x01
            #expect(!constantTimeEquals(base, other))
        }
    }

    @Test func differentLengthsAreUnequal() {
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
        #expect(!constantTimeEquals([], [0]))
    }

    @Test func secureWipeZeroesInPlace() {
        var secret: [UInt8] = [0xde, 0xad, 0xbe, 0xef]
        secureWipe(&secret)
        #expect(secret == [0, 0, 0, 0])
        var empty: [UInt8] = []
        secureWipe(&empty)
        #expect(empty == [])
    }
}
