/// Finds, in one pass and without recursion, where each entry of a transaction body lies.
///
/// A transaction is judged entry by entry (see ``AppserviceTransaction/decode(_:)``), so the body is not
/// parsed as a whole. The scanner checks only what any JSON encoder gets right and what is needed to find
/// entries: brackets balance and match, strings end, the top-level object is a list of `"key": value`
/// members, and nothing follows it. Anything else is left to the strict parser, entry by entry. Inside
/// the sections a ``ScanPlan`` names it descends to the entries and records their byte ranges; every
/// other value is skipped over with a heap stack of open brackets, so no input depth can exhaust the call
/// stack (the plan itself is at most four levels deep).
struct TransactionScanner {
    /// Why the body as a whole is not JSON; nothing can be taken from it.
    struct Malformed: Error {
        var message: String
        var offset: Int
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Open brackets of the value being skipped, innermost last (`true`: an object).
    var open: [Bool] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    func malformed(_ message: String) -> Malformed { Malformed(message: message, offset: index) }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }
}

/// Which parts of a value the scanner looks into.
///
/// A struct rather than an indirect enum: the plan lives in a global, and LeakSanitizer (scripts/fuzz)
/// cannot follow the tagged pointers to an indirect enum's boxes, so it reported them as leaked.
struct ScanPlan: Sendable {
    enum Shape: Sendable {
        /// Record where the value lies; do not look inside.
        case entry
        case array
        case object
    }

    var shape: Shape
    /// For an array, its elements' plan; for an object keyed by data (user ids, device ids), every
    /// member's plan. One plan, or none.
    var each: [ScanPlan] = []
    /// For an object with known fields: the named members' plans; other members are skipped unrecorded.
    var fields: [String: ScanPlan] = [:]

    static let entry = ScanPlan(shape: .entry)
    /// An array: each element per `plan`.
    static func elements(_ plan: ScanPlan) -> ScanPlan { ScanPlan(shape: .array, each: [plan]) }
    /// An object keyed by data: every member's value per `plan`.
    static func members(_ plan: ScanPlan) -> ScanPlan { ScanPlan(shape: .object, each: [plan]) }
    /// An object with known fields.
    static func fields(_ fields: [String: ScanPlan]) -> ScanPlan { ScanPlan(shape: .object, fields: fields) }

    /// The plan for the member named `key` of an object; nil to skip it.
    func member(_ key: String) -> ScanPlan? { each.first ?? fields[key] }
}

/// What the scanner found where a plan looked.
enum Scanned: Equatable {
    /// `null`, which counts as absent.
    case null
    /// The bytes of one entry, without surrounding whitespace; parsed later on their own.
    case entry(Range<Int>)
    case elements([Scanned])
    case members([ScannedMember])
    /// Present, but not the array or object the plan expects.
    case wrongType
    /// A member or element that could not even be delimited cleanly: no `:` after a key, no value, or
    /// something between a container and the next separator (`[1] x`).
    case unparseable
}

/// One member of an object the scanner looked into.
struct ScannedMember: Equatable {
    /// The key, or why it could not be read (the member is then left out).
    var key: Result<String, JSONError>
    var value: Scanned
}
