internal import COpenSSL

/// Access to libcrypto's thread-local error queue.
///
/// libcrypto reports *why* a call failed by pushing entries onto a per-thread queue. Every failure we
/// surface drains that queue into the error message, so the detail reaches the log and stale entries
/// never leak into the next, unrelated failure on the same thread.
enum LibcryptoErrorQueue {
    /// Removes every queued libcrypto error and returns them as readable strings, oldest first.
    static func drain() -> [String] {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, $0.count) }
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }

    /// Discards queued errors after a failure that has its own, more precise meaning (a tag mismatch).
    static func clear() {
        ERR_clear_error()
    }
}

extension PrimitivesError {
    /// A `.libcrypto` error for a failed call, with libcrypto's queued errors appended.
    ///
    /// - Parameter operation: The C function (or step) that failed, for the message.
    /// - Returns: The error; the thread's error queue is empty afterwards.
    static func libcrypto(_ operation: String) -> PrimitivesError {
        let queued = LibcryptoErrorQueue.drain()
        let detail = queued.isEmpty ? "no detail queued" : queued.joined(separator: "; ")
        return PrimitivesError(.libcrypto, "\(operation) failed: \(detail)")
    }
}
