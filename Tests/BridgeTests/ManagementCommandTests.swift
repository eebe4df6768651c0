import Bridge
import MatrixModels
import Testing

@Suite("Management commands")
struct ManagementCommandTests {
    let admin = try! UserID("@admin:localhost"), stranger = try! UserID("@stranger:localhost")

    var commands: ManagementCommands {
        ManagementCommands(admins: [admin], commands: [
            ManagementCommand(name: "status", help: "how things are") { arguments, sender in
                CommandReply(body: "ok for \(sender) \(arguments.joined(separator: ","))")
            },
            ManagementCommand(name: "ping", help: "anyone may", requiresAdmin: false) { _, _ in CommandReply(body: "pong") },
        ])
    }

    @Test("admins run commands (case-insensitive name, arguments passed); others get one short refusal")
    func permission() async {
        #expect(await commands.handle("STATUS a b", from: admin) == CommandReply(body: "ok for @admin:localhost a,b"))
        #expect(await commands.handle("status", from: stranger)?.body == "Only Sealbridge admins can run commands.")
        #expect(await commands.handle("nonsense", from: stranger)?.body == "Only Sealbridge admins can run commands.")
        #expect(await commands.handle("ping", from: stranger)?.body == "pong")
        #expect(await commands.handle("nonsense", from: admin)?.body.hasPrefix("Unknown command \"nonsense\"") == true)
        #expect(await commands.handle("   ", from: admin) == nil)
    }

    @Test("help lists every command as text and as an HTML table, escaped")
    func help() async throws {
        let reply = try #require(await commands.handle("help", from: admin))
        #expect(reply.body.contains("status: how things are"))
        #expect(reply.body.contains("help: list the commands"))
        #expect(reply.html?.contains("<table>") == true)
        #expect(reply.content["msgtype"]?.stringValue == "m.notice")
        #expect(reply.content["format"]?.stringValue == "org.matrix.custom.html")
        #expect(CommandReply.table(title: "<b>", rows: [("a&b", "<i>")]).html == "<p><strong>&lt;b&gt;</strong></p><table><tr><td>a&amp;b</td><td>&lt;i&gt;</td></tr></table>")
    }
}
