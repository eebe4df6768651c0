import Logging
import Metrics
import ServiceLifecycle

/// One table's pruning: deletes at most `batch` rows per call and says how many went.
public struct HousekeepingTask: Sendable {
    public var table: String
    public var prune: @Sendable (_ batch: Int) async throws -> Int

    public init(table: String, prune: @escaping @Sendable (_ batch: Int) async throws -> Int) {
        self.table = table
        self.prune = prune
    }
}

/// Keeps the tables that only grow bounded (`retention` in the configuration): every `interval`,
/// each task deletes in batches until a batch comes back short, with a pause between batches so that
/// no statement holds locks for long and transactions keep flowing.
public struct HousekeepingService: Service {
    let tasks: [HousekeepingTask]
    let interval: Duration
    let batch: Int
    /// Most batches per task per round; the rest waits for the next round.
    let maxBatches: Int
    let pause: Duration
    let logger: Logger

    public init(
        tasks: [HousekeepingTask], interval: Duration = .seconds(600), batch: Int = 1_000, maxBatches: Int = 100, pause: Duration = .milliseconds(50),
        logger: Logger
    ) {
        self.tasks = tasks
        self.interval = interval
        self.batch = batch
        self.maxBatches = maxBatches
        self.pause = pause
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await round()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass over every task. A failing task is logged and retried next round; the others go on.
    ///
    /// - Returns: Rows deleted per table.
    @discardableResult
    public func round() async -> [String: Int] {
        var deleted: [String: Int] = [:]
        for task in tasks {
            var total = 0
            do {
                for _ in 0..<maxBatches {
                    let count = try await task.prune(batch)
                    total += count
                    if count < batch { break }
                    try await Task.sleep(for: pause)
                }
            } catch is CancellationError {
                return deleted
            } catch {
                logger.warning("housekeeping failed; retrying next round", metadata: ["table": "\(task.table)", "error": "\(error)"])
            }
            if total > 0 {
                Counter(label: "sealbridge_housekeeping_deleted_total", dimensions: [("table", task.table)]).increment(by: total)
                logger.info("housekeeping pruned old rows", metadata: ["table": "\(task.table)", "rows": "\(total)"])
            }
            deleted[task.table] = total
        }
        return deleted
    }
}
