import Primitives
import Testing

/// PBKDF2-HMAC-SHA-512 with P = "password", S = "salt", dkLen = 64, the widely published vectors
/// (as in the RFC 7914 errata and Go/Python test suites; rechecked with Python's hashlib).
@Suite struct PBKDF2SHA512Tests {
    @Test func oneIteration() throws {
        let key = try PBKDF2SHA512.deriveKey(from: utf8("password"), salt: utf8("salt"), iterations: 1, outputByteCount: 64)
        #expect(key == hex("""
            867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252
            c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce
            """))
    }

    @Test func twoIterations() throws {
        let key = try PBKDF2SHA512.deriveKey(from: utf8("password"), salt: utf8("salt"), iterations: 2, outputByteCount: 64)
        #expect(key == hex("""
            e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c
            f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e
            """))
    }

    /// Checked with Python's hashlib; exercises empty password and salt.
    @Test func emptyPasswordAndSalt() throws {
        let key = try PBKDF2SHA512.deriveKey(from: [], salt: [], iterations: 1, outputByteCount: 16)
        #expect(key == hex("6d2ecbbbfb2e6dcd7056faf9af6aa06e"))
    }

    @Test func rejectsOutOfRangeCounts() {
        for (iterations, length) in [(0, 32), (-5, 32), (1, 0), (1, -1)] {
            let error = #expect(throws: PrimitivesError.self) {
                try PBKDF2SHA512.deriveKey(from: utf8("p"), salt: utf8("s"), iterations: iterations, outputByteCount: length)
            }
            #expect(error?.code == .invalidInput)
        }
    }
}
