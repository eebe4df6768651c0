import Foundation
import SealbridgeConfig
import Testing

@Suite("Registration file against the configuration (self-check and doctor)")
struct RegistrationCheckTests {
    let configuration = try! SealbridgeConfiguration.parse(validYAML())

    var generated: String { Registration.generate(from: configuration).yaml }

    @Test("what generate-registration writes fits")
    func generatedFits() {
        #expect(Registration.check(generated, file: "reg.yaml", against: configuration).isEmpty)
    }

    @Test("each missing flag is named with the line to add")
    func missingFlags() {
        let text = generated
            .replacingOccurrences(of: "receive_ephemeral: true", with: "receive_ephemeral: false")
            .replacingOccurrences(of: "de.sorunome.msc2409.push_ephemeral: true\n", with: "")
            .replacingOccurrences(of: "org.matrix.msc3202: true", with: "")
            .replacingOccurrences(of: "io.element.msc4190: true", with: "io.element.msc4190: \"yes\"")
            .replacingOccurrences(of: "rate_limited: false", with: "")
        let problems = Registration.check(text, file: "reg.yaml", against: configuration)
        let fixes = problems.map(\.fix).joined(separator: "\n")
        #expect(problems.filter { $0.severity == .error }.count == 3)
        #expect(fixes.contains("reg.yaml: receive_ephemeral: true and de.sorunome.msc2409.push_ephemeral: true"))
        #expect(fixes.contains("reg.yaml: org.matrix.msc3202: true"))
        #expect(fixes.contains("reg.yaml: io.element.msc4190: true"))
        #expect(problems.contains { $0.severity == .warning && $0.fix.contains("rate_limited: false") })
        // The unstable flag alone is enough for Synapse.
        let unstableOnly = generated.replacingOccurrences(of: "receive_ephemeral: true\n", with: "")
        #expect(Registration.check(unstableOnly, file: "reg.yaml", against: configuration).isEmpty)
    }

    @Test("wrong tokens are named, never printed; wrong id, url, sender and namespaces")
    func identity() {
        let text = generated
            .replacingOccurrences(of: asToken, with: "something-else-entirely-0123456789abcdef")
            .replacingOccurrences(of: "id: \"sealbridge\"", with: "id: \"other\"")
            .replacingOccurrences(of: "url: \"http://127.0.0.1:29330\"", with: "url: \"http://10.0.0.1:1\"")
            .replacingOccurrences(of: "sender_localpart: \"sealbridge\"", with: "sender_localpart: \"bot\"")
            .replacingOccurrences(of: "regex: \"@sealbridge_.+:example\\\\.org\"", with: "regex: \"@other_.+:example\\\\.org\"")
        let problems = Registration.check(text, file: "reg.yaml", against: configuration)
        let all = problems.map(\.description).joined(separator: "\n")
        #expect(all.contains("as_token differs"))
        #expect(!all.contains("hs_token differs"))
        #expect(!all.contains(asToken) && !all.contains("something-else-entirely"))
        #expect(all.contains("id is \"other\""))
        #expect(all.contains("url is \"http://10.0.0.1:1\""))
        #expect(all.contains("sender_localpart is \"bot\""))
        #expect(all.contains("no namespaces.users regex matches the puppets"))
        let shared = generated.replacingOccurrences(of: "exclusive: true", with: "exclusive: false")
        #expect(Registration.check(shared, file: "reg.yaml", against: configuration).filter { $0.message.contains("not exclusive") }.count == 2)
    }

    @Test("not YAML, or not a mapping")
    func unreadable() {
        #expect(Registration.check("- a\n- b\n", file: "reg.yaml", against: configuration).count == 1)
        #expect(Registration.check("{{{", file: "reg.yaml", against: configuration).count == 1)
    }

    @Test("self_checks: defaults, values, bounds, the registration file relative to the config")
    func selfChecksConfig() throws {
        let defaults = try SealbridgeConfiguration.parse(validYAML())
        #expect(defaults.selfChecks.enabled && defaults.selfChecks.interval == 300 && defaults.selfChecks.toDeviceTimeout == 30)
        #expect(defaults.selfChecks.registrationFile == nil)
        let set = try SealbridgeConfiguration.parse(
            validYAML("self_checks:\n  enabled: false\n  interval_minutes: 2\n  to_device_timeout_seconds: 10\n  registration_file: reg.yaml"),
            directory: URL(fileURLWithPath: "/etc/sealbridge"))
        #expect(!set.selfChecks.enabled && set.selfChecks.interval == 120 && set.selfChecks.toDeviceTimeout == 10)
        #expect(set.selfChecks.registrationFile == "/etc/sealbridge/reg.yaml")
        #expect(!problems { _ = try SealbridgeConfiguration.parse(validYAML("self_checks:\n  interval_minutes: 0\n  bogus: 1")) }.isEmpty)
    }
}
