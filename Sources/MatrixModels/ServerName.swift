/// A homeserver name: hostname, IPv4 or bracketed IPv6 literal, with an optional port (spec appendix "Server Name").
public struct ServerName: MatrixIdentifier {
    public let rawValue: String
    /// The host without the port.
    public let host: String
    public let port: Int?

    public init(_ string: String) throws(IdentifierError) {
        guard !string.isEmpty else { throw IdentifierError(.invalidServerName, "empty server name") }
        guard string.utf8.count <= IdentifierRules.maximumLength else { throw IdentifierError(.tooLong, "server name is too long") }
        var host = Substring(string)
        var port: Int?
        if string.hasPrefix("[") {
            guard let close = string.firstIndex(of: "]") else { throw IdentifierError(.invalidServerName, "unclosed IPv6 literal: \"\(string)\"") }
            let literal = string[string.index(after: string.startIndex)..<close]
            guard !literal.isEmpty, literal.count <= 45,
                literal.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), literal.contains(":")
            else { throw IdentifierError(.invalidServerName, "invalid IPv6 literal: \"\(string)\"") }
            host = string[...close]
            let rest = string[string.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { throw IdentifierError(.invalidServerName, "junk after IPv6 literal: \"\(string)\"") }
                port = try Self.parsePort(rest.dropFirst(), string)
            }
        } else {
            let colon = IdentifierRules.isASCII(string) ? string.utf8.lastIndex(of: UInt8(ascii: ":")) : string.lastIndex(of: ":")
            if let colon {
                host = string[..<colon]
                port = try Self.parsePort(string[string.index(after: colon)...], string)
            }
            // ASCII letters, digits, '-' and '.' only: byte-wise (a non-ASCII byte fails it, as the
            // non-ASCII Character it belongs to would).
            guard !host.isEmpty, host.utf8.count <= 255,
                host.utf8.allSatisfy({ Self.isHostnameByte($0) })
            else { throw IdentifierError(.invalidServerName, "invalid hostname: \"\(string)\"") }
        }
        self.rawValue = string
        self.host = String(host)
        self.port = port
    }

    static func isHostnameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    static func parsePort(_ text: Substring, _ whole: String) throws(IdentifierError) -> Int {
        guard (1...5).contains(text.count), text.allSatisfy(\.isASCII), let port = Int(text), (0...65535).contains(port) else {
            throw IdentifierError(.invalidServerName, "invalid port in server name: \"\(whole)\"")
        }
        return port
    }
}
