import Foundation
import MatrixModels
import Synchronization

/// Who Sealbridge acts for: the bot and the users of the puppet namespace.
///
/// Everything that takes a user from outside (the bridge API's `as=`, invites in transactions)
/// asks here first, so the bridge logic can never make Sealbridge act as a user it does not own.
public struct LocalUsers: Sendable {
    public let bot: UserID
    /// Anchored regex over the whole user id, as in the registration's user namespace; compiled once,
    /// as it is asked about every event of every transaction. Matching is thread-safe.
    private let puppetPattern: NSRegularExpression?
    /// Answers already computed: the namespace never changes, and a transaction asks about the same
    /// few senders for every event (the regex match cost more than the rest of an event's checks).
    private let answers = PuppetAnswers()

    /// - Parameter puppetNamespaceRegex: Validated by the configuration; one that does not compile
    ///   matches nobody.
    public init(bot: UserID, puppetNamespaceRegex: String) {
        self.bot = bot
        self.puppetPattern = try? NSRegularExpression(pattern: "^(?:\(puppetNamespaceRegex))$")
    }

    public func isPuppet(_ user: UserID) -> Bool {
        guard user != bot, let puppetPattern else { return false }
        let text = user.rawValue
        if let known = answers.answer(for: text) { return known }
        let matches = puppetPattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        answers.record(matches, for: text)
        return matches
    }

    /// The bot or a puppet.
    public func isLocal(_ user: UserID) -> Bool { user == bot || isPuppet(user) }
}

/// A bounded memo of namespace answers, shared by the copies of one ``LocalUsers``.
final class PuppetAnswers: Sendable {
    /// Forgotten all at once when full: a bound on memory, not an eviction policy (misses only cost a match).
    static let capacity = 16_384
    private let known = Mutex<[String: Bool]>([:])

    func answer(for user: String) -> Bool? {
        known.withLock { $0[user] }
    }

    func record(_ answer: Bool, for user: String) {
        known.withLock { known in
            if known.count >= Self.capacity { known.removeAll(keepingCapacity: true) }
            known[user] = answer
        }
    }
}
