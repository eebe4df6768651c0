import Foundation
import MatrixModels

/// Who Sealbridge acts for: the bot and the users of the puppet namespace.
///
/// Everything that takes a user from outside (the bridge API's `as=`, invites in transactions)
/// asks here first, so the bridge logic can never make Sealbridge act as a user it does not own.
public struct LocalUsers: Sendable {
    public let bot: UserID
    /// Anchored regex over the whole user id, as in the registration's user namespace; compiled once,
    /// as it is asked about every event of every transaction. Matching is thread-safe.
    nonisolated(unsafe) private let puppetPattern: NSRegularExpression?

    /// - Parameter puppetNamespaceRegex: Validated by the configuration; one that does not compile
    ///   matches nobody.
    public init(bot: UserID, puppetNamespaceRegex: String) {
        self.bot = bot
        self.puppetPattern = try? NSRegularExpression(pattern: "^(?:\(puppetNamespaceRegex))$")
    }

    public func isPuppet(_ user: UserID) -> Bool {
        guard user != bot, let puppetPattern else { return false }
        let text = user.rawValue
        return puppetPattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// The bot or a puppet.
    public func isLocal(_ user: UserID) -> Bool { user == bot || isPuppet(user) }
}
