import Foundation
import MatrixModels

/// Who Sealbridge acts for: the bot and the users of the puppet namespace.
///
/// Everything that takes a user from outside (the bridge API's `as=`, invites in transactions)
/// asks here first, so the bridge logic can never make Sealbridge act as a user it does not own.
public struct LocalUsers: Sendable {
    public let bot: UserID
    /// Anchored regex over the whole user id, as in the registration's user namespace.
    private let puppetPattern: String

    public init(bot: UserID, puppetNamespaceRegex: String) {
        self.bot = bot
        self.puppetPattern = "^(?:\(puppetNamespaceRegex))$"
    }

    public func isPuppet(_ user: UserID) -> Bool {
        user != bot && user.rawValue.range(of: puppetPattern, options: .regularExpression) != nil
    }

    /// The bot or a puppet.
    public func isLocal(_ user: UserID) -> Bool { user == bot || isPuppet(user) }
}
