import Bridge
import Foundation
import SealbridgeConfig

extension SelfCheckResult {
    /// The `registration` check: the file named by `self_checks.registration_file` (or `file`) against
    /// the configuration. Skipped when no file is named: the daemon is not told where the homeserver's copy is.
    static func registration(_ configuration: SealbridgeConfiguration, file: String? = nil) -> SelfCheckResult {
        guard let file = file ?? configuration.selfChecks.registrationFile else {
            return SelfCheckResult(
                .registration, .skipped, "not compared: no registration file named",
                fix: "Sealbridge configuration: self_checks: registration_file: the path of the file the homeserver loads (app_service_config_files)")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            return SelfCheckResult(
                .registration, .failed, "cannot read \(file)",
                fix: "Sealbridge configuration: self_checks.registration_file must name the registration file the homeserver loads, readable by Sealbridge")
        }
        let problems = Registration.check(String(decoding: data, as: UTF8.self), file: file, against: configuration)
        let errors = problems.filter { $0.severity == .error }, warnings = problems.filter { $0.severity == .warning }
        guard errors.isEmpty else {
            return SelfCheckResult(
                .registration, .failed, errors.map(\.message).joined(separator: "; "), fix: errors.map(\.fix).joined(separator: "; "))
        }
        let note = warnings.isEmpty ? "" : " (warning: \(warnings.map(\.description).joined(separator: "; ")))"
        return SelfCheckResult(.registration, .ok, "\(file) fits the configuration\(note)")
    }
}
