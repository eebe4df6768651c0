import SealbridgeConfig
import Testing

@Suite("Configuration: trust policies")
struct TrustPolicyTests {
    func encryption(_ lines: String) -> String {
        validYAML().replacingOccurrences(of: "encryption:\n", with: "encryption:\n" + lines)
    }

    @Test("sharing_policy defaults to cross_signed (MSC4153), accept_from to all; every value and the names of earlier versions are read")
    func values() throws {
        let defaults = try SealbridgeConfiguration.parse(validYAML())
        #expect(defaults.encryption.sharingPolicy == .crossSigned && defaults.encryption.acceptFrom == .all)
        let strict = try SealbridgeConfiguration.parse(encryption("  sharing_policy: cross_signed\n  accept_from: verified\n"))
        #expect(strict.encryption.sharingPolicy == .crossSigned && strict.encryption.acceptFrom == .verified)
        let old = try SealbridgeConfiguration.parse(encryption("  sharing_policy: cross_signed_only\n"))
        #expect(old.encryption.sharingPolicy == .crossSigned)
        let oldAll = try SealbridgeConfiguration.parse(encryption("  sharing_policy: all_devices\n"))
        #expect(oldAll.encryption.sharingPolicy == .all)
    }

    @Test("an unknown policy is refused with its key path")
    func refused() {
        let found = problems { _ = try SealbridgeConfiguration.parse(encryption("  sharing_policy: friends\n  accept_from: anyone\n")) }
        #expect(found.contains { $0.hasPrefix("encryption.sharing_policy: must be one of all, cross_signed, verified") })
        #expect(found.contains { $0.hasPrefix("encryption.accept_from: must be one of all, cross_signed, verified") })
    }
}
