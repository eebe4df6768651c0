import MatrixModels

/// A command admins run in the management room: a declarative value, so help text and permission
/// live next to the handler and the permission check lives in one place (``ManagementCommands``).
public struct ManagementCommand: Sendable {
    public var name: String
    public var help: String
    public var requiresAdmin: Bool
    public var run: @Sendable (_ arguments: [String], _ sender: UserID) async -> CommandReply

    public init(name: String, help: String, requiresAdmin: Bool = true, run: @escaping @Sendable ([String], UserID) async -> CommandReply) {
        self.name = name
        self.help = help
        self.requiresAdmin = requiresAdmin
        self.run = run
    }
}

/// A reply: plain text, and HTML where a table reads better.
public struct CommandReply: Sendable, Equatable {
    public var body: String
    public var html: String?

    public init(body: String, html: String? = nil) {
        self.body = body
        self.html = html
    }

    /// `m.notice` content, with `formatted_body` when there is HTML.
    public var content: JSONValue {
        var members: [String: JSONValue] = ["msgtype": "m.notice", "body": .string(body)]
        if let html {
            members["format"] = "org.matrix.custom.html"
            members["formatted_body"] = .string(html)
        }
        return .object(members)
    }

    /// A two-column table: `label: value` lines as text, an HTML table as HTML.
    public static func table(title: String, rows: [(String, String)]) -> CommandReply {
        let text = ([title] + rows.map { "\($0.0): \($0.1)" }).joined(separator: "\n")
        let cells = rows.map { "<tr><td>\(escape($0.0))</td><td>\(escape($0.1))</td></tr>" }.joined()
        return CommandReply(body: text, html: "<p><strong>\(escape(title))</strong></p><table>\(cells)</table>")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The command set and its one permission check.
public struct ManagementCommands: Sendable {
    public let admins: Set<UserID>
    private var commands: [String: ManagementCommand] = [:]
    private var order: [String] = []

    public init(admins: Set<UserID>, commands: [ManagementCommand]) {
        self.admins = admins
        for command in commands { add(command) }
        let rows = commands.map { ($0.name, $0.help) } + [("help", "list the commands")]
        add(ManagementCommand(name: "help", help: "list the commands") { _, _ in
            CommandReply.table(title: "Sealbridge commands", rows: rows)
        })
    }

    private mutating func add(_ command: ManagementCommand) {
        if commands[command.name] == nil { order.append(command.name) }
        commands[command.name] = command
    }

    /// Runs the command a message names; refuses non-admins before looking further.
    ///
    /// - Returns: nil when the message is not a command (empty body).
    public func handle(_ body: String, from sender: UserID) async -> CommandReply? {
        let words = body.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let name = words.first?.lowercased() else { return nil }
        guard let command = commands[name] else {
            guard admins.contains(sender) else { return CommandReply(body: "Only Sealbridge admins can run commands.") }
            return CommandReply(body: "Unknown command \"\(name)\". Send \"help\" for the list.")
        }
        if command.requiresAdmin && !admins.contains(sender) { return CommandReply(body: "Only Sealbridge admins can run commands.") }
        return await command.run(Array(words.dropFirst()), sender)
    }
}
