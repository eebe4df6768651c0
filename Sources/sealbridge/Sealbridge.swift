import ArgumentParser

/// The `sealbridge` command line: parses arguments and hands off to library code.
@main
struct Sealbridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealbridge",
        abstract: "End-to-end encryption for Matrix application services.",
        discussion: """
            Sealbridge keeps Olm/Megolm state for an appservice bot and its puppets in PostgreSQL, \
            decrypts what the homeserver pushes and encrypts what the bridge sends.
            """,
        version: SealbridgeVersion.current)
}
