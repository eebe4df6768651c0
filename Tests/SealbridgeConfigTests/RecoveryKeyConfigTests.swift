import Foundation
import SealbridgeConfig
import Testing

/// `encryption.recovery_key(_file)`: optional, read like every secret (file under
/// `$CREDENTIALS_DIRECTORY`, environment override), never in the summary.
@Suite struct RecoveryKeyConfigTests {
    let key = "EsTE s92N EtaX s2h6 VQYF 9Kao tHYL mkyL GKMh isZb KJ4E tvoC"

    @Test("absent by default; inline, from a credential file, or from the environment")
    func sources() throws {
        #expect(try SealbridgeConfiguration.parse(validYAML()).encryption.recoveryKey == nil)
        let inline = validYAML().replacingOccurrences(of: "encryption:\n", with: "encryption:\n  recovery_key: \"\(key)\"\n")
        let config = try SealbridgeConfiguration.parse(inline)
        #expect(config.encryption.recoveryKey == key)
        #expect(!config.summary.contains("EsTE"))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-recovery-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data((key + "\n").utf8).write(to: directory.appendingPathComponent("recovery_key"))
        let file = validYAML().replacingOccurrences(of: "encryption:\n", with: "encryption:\n  recovery_key_file: recovery_key\n")
        #expect(try SealbridgeConfiguration.parse(file, environment: ["CREDENTIALS_DIRECTORY": directory.path]).encryption.recoveryKey == key)
        #expect(problems { _ = try SealbridgeConfiguration.parse(file, environment: ["CREDENTIALS_DIRECTORY": "/nonexistent"]) }
            .contains { $0.hasPrefix("encryption.recovery_key_file: cannot read") })
        #expect(try SealbridgeConfiguration.parse(validYAML(), environment: ["SEALBRIDGE_ENCRYPTION_RECOVERY_KEY": key]).encryption.recoveryKey == key)
    }
}
