import Foundation
import Yams

/// Something in the registration file that does not fit this configuration, with the change that fixes it.
public struct RegistrationProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        /// Encryption cannot work (or the homeserver and Sealbridge do not recognise each other).
        case error
        /// Works, but worse than it should (e.g. puppets rate limited).
        case warning
    }

    public var severity: Severity
    /// What is wrong; never a token's value.
    public var message: String
    /// The change that fixes it, naming the file and key.
    public var fix: String

    public var description: String { "\(message) — fix: \(fix)" }
}

extension Registration {
    /// Compares the registration file the homeserver was given with what this configuration needs:
    /// identity (`id`, `url`, tokens, `sender_localpart`), exclusive user namespaces covering the bot
    /// and the puppets, and the flags an encrypted appservice needs on Synapse (ephemeral/to-device,
    /// MSC3202, MSC4190; see docs/self-checks.md).
    ///
    /// - Parameters:
    ///   - text: The registration file's content.
    ///   - file: Its path, named in each fix.
    /// - Returns: Every problem found; empty when the file fits.
    public static func check(_ text: String, file: String, against configuration: SealbridgeConfiguration) -> [RegistrationProblem] {
        func error(_ message: String, _ fix: String) -> RegistrationProblem { .init(severity: .error, message: message, fix: fix) }
        guard let root = (try? Yams.compose(yaml: text)) ?? nil, let mapping = root.mapping else {
            return [error("\(file) is not a YAML mapping", "write it again with `sealbridge generate-registration --config CONFIG --output \(file)`")]
        }
        func value(_ key: String) -> Node? { mapping[Node(key)] }
        func string(_ key: String) -> String? { value(key)?.scalar?.string }
        // A quoted "true" is a string to the homeserver (Synapse refuses it), so only plain scalars count.
        func flag(_ key: String) -> Bool? {
            guard let scalar = value(key)?.scalar, scalar.style != .singleQuoted && scalar.style != .doubleQuoted else { return nil }
            return value(key)?.bool
        }
        var problems: [RegistrationProblem] = []
        let appservice = configuration.appservice
        if string("id") != appservice.id {
            problems.append(error(
                "\(file): id is \(string("id").map { "\"\($0)\"" } ?? "missing"), the configuration's appservice.id is \"\(appservice.id)\"",
                "\(file): id: \"\(appservice.id)\" (or appservice.id in the configuration), then restart the homeserver"))
        }
        if string("url") != appservice.publicURL {
            problems.append(error(
                "\(file): url is \(string("url").map { "\"\($0)\"" } ?? "missing"), the configuration's appservice.url is \"\(appservice.publicURL)\"",
                "\(file): url: \"\(appservice.publicURL)\" (where the homeserver reaches Sealbridge), then restart the homeserver"))
        }
        // Token values are secrets: say which one differs, never what it is.
        for (key, expected) in [("as_token", appservice.asToken), ("hs_token", appservice.hsToken)] where string(key) != expected {
            problems.append(error(
                "\(file): \(key) differs from the configuration's appservice.\(key)",
                "copy appservice.\(key) from the configuration into \(file) (or regenerate the file), then restart the homeserver"))
        }
        if string("sender_localpart") != appservice.botLocalpart {
            problems.append(error(
                "\(file): sender_localpart is \(string("sender_localpart").map { "\"\($0)\"" } ?? "missing"), the bot is \"\(appservice.botLocalpart)\"",
                "\(file): sender_localpart: \"\(appservice.botLocalpart)\", then restart the homeserver"))
        }
        let regexes = (value("namespaces")?.mapping?[Node("users")]?.sequence ?? []).compactMap { entry -> (String, Bool)? in
            guard let regex = entry.mapping?[Node("regex")]?.scalar?.string else { return nil }
            return (regex, entry.mapping?[Node("exclusive")]?.bool ?? false)
        }
        let puppet = "@" + appservice.puppetLocalpartTemplate.replacingOccurrences(of: "{id}", with: "example") + ":" + configuration.homeserver.serverName
        for (who, user) in [("the bot", configuration.botUserID), ("the puppets", puppet)] {
            guard let (_, exclusive) = regexes.first(where: { Self.fullMatch($0.0, user) }) else {
                problems.append(error(
                    "\(file): no namespaces.users regex matches \(who) (\(user))",
                    "\(file): add under namespaces.users: - exclusive: true, regex: \"\(who == "the bot" ? NSRegularExpression.escapedPattern(for: configuration.botUserID) : configuration.puppetNamespaceRegex)\""))
                continue
            }
            if !exclusive {
                problems.append(error(
                    "\(file): the namespaces.users entry for \(who) is not exclusive",
                    "\(file): exclusive: true on that entry (only Sealbridge may create and act as these users)"))
            }
        }
        if flag("receive_ephemeral") != true && flag("de.sorunome.msc2409.push_ephemeral") != true {
            problems.append(error(
                "\(file): neither receive_ephemeral nor de.sorunome.msc2409.push_ephemeral is true: the homeserver pushes no to-device messages (no room keys arrive)",
                "\(file): receive_ephemeral: true and de.sorunome.msc2409.push_ephemeral: true, then restart the homeserver"))
        }
        if flag("org.matrix.msc3202") != true {
            problems.append(error(
                "\(file): org.matrix.msc3202 is not true: no device-list changes or one-time key counts arrive",
                "\(file): org.matrix.msc3202: true, then restart the homeserver"))
        }
        if flag("io.element.msc4190") != true {
            problems.append(error(
                "\(file): io.element.msc4190 is not true: Sealbridge cannot create its devices",
                "\(file): io.element.msc4190: true, then restart the homeserver"))
        }
        if flag("rate_limited") != false {
            problems.append(.init(
                severity: .warning, message: "\(file): rate_limited is not false: the bot and puppets are rate limited",
                fix: "\(file): rate_limited: false, then restart the homeserver"))
        }
        return problems
    }

    /// Whether `pattern` matches all of `text` (Synapse matches namespace regexes against the whole id).
    static func fullMatch(_ pattern: String, _ text: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
