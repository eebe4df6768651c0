import Foundation

/// The throwaway Synapse `scripts/test` starts for the Swift suites (an appservice with MSC4190 and
/// the user namespace `@sbtest_.*:localhost` that pushes nowhere).
public enum TestHomeserver {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "SEALBRIDGE_TEST_HOMESERVER_URL / SEALBRIDGE_TEST_AS_TOKEN are not set: run the tests with scripts/test"
        }
    }

    /// Its base URL and the appservice token.
    public static func environment() throws -> (url: String, asToken: String) {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["SEALBRIDGE_TEST_HOMESERVER_URL"], !url.isEmpty, let token = environment["SEALBRIDGE_TEST_AS_TOKEN"], !token.isEmpty
        else { throw Missing() }
        return (url, token)
    }
}
