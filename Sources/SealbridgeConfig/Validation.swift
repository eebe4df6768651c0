import Foundation

/// Syntax checks for configuration values, kept apart so tests and the loader share them.
enum Validation {
    static func httpURL(_ text: String, _ path: String, _ reader: ConfigReader) {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            reader.problem(path, "not an http(s) URL: \"\(text)\"")
            return
        }
    }

    /// Whether the URL's host is this machine (127.0.0.0/8, ::1, localhost).
    static func isLoopbackURL(_ text: String) -> Bool {
        guard let host = URL(string: text)?.host?.lowercased() else { return false }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    static func isServerName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 255 else { return false }
        let host: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return false }
            host = text[...close]
            let rest = text[text.index(after: close)...]
            return rest.isEmpty || (rest.first == ":" && isPort(rest.dropFirst()))
        }
        if let colon = text.lastIndex(of: ":") {
            guard isPort(text[text.index(after: colon)...]) else { return false }
            host = text[..<colon]
        } else {
            host = Substring(text)
        }
        return !host.isEmpty && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
    }

    static func isPort(_ text: Substring) -> Bool {
        guard (1...5).contains(text.count), let port = Int(text) else { return false }
        return (1...65535).contains(port)
    }

    /// Localparts Sealbridge creates: the current spec's set (lowercase, digits, `._=-/`).
    static func isLocalpart(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._=-/".contains($0) }
    }

    static func isUserID(_ text: String) -> Bool {
        guard text.hasPrefix("@"), let colon = text.firstIndex(of: ":") else { return false }
        let local = text[text.index(after: text.startIndex)..<colon]
        return !local.isEmpty && isServerName(String(text[text.index(after: colon)...]))
    }

    static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), isPort(text[text.index(after: colon)...]) else { return nil }
        let host = String(text[..<colon])
        return host.isEmpty ? nil : (host, Int(text[text.index(after: colon)...])!)
    }
}
