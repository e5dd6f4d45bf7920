import NIOConcurrencyHelpers
import ThemisApps
import ThemisClient
import ThemisCore

#if canImport(Glibc)
import Glibc
#endif

/// The demo's key-value workload: each client owns its keys, so a per-client model predicts every read
/// exactly; 60% puts, 30% gets, 10% deletes.
struct DemoWorkload {
    struct Outcome {
        var latencies: [UInt64] = []
        var wrongResults = 0
        var seconds = 0.0
        var models: [[String: [UInt8]]] = []
        /// Monotonic time of the kill, if one happened.
        var killedAt: UInt64?
        var operationsBeforeKill = 0
        /// Nanoseconds from the kill until the first operation started after it completed.
        var resumedAfterKill: UInt64?
    }

    /// Kill a replica once `atOperation` operations completed.
    struct Crash: Sendable {
        let atOperation: Int
        let action: @Sendable () async -> Void
    }

    /// Per operation: when it started and ended.
    typealias Span = (start: UInt64, end: UInt64)

    let clients: [ThemisClient]
    let operations: Int

    func run(crash: Crash?) async throws -> Outcome {
        let done = NIOLockedValueBox(0)
        let killedAt = NIOLockedValueBox<(UInt64, Int)?>(nil)
        let total = operations
        let start = monotonicNanoseconds()
        let progress = Task { await Self.showProgress(done: done, total: total, start: start) }
        let killer = Task {
            guard let crash else { return }
            while done.withLockedValue({ $0 }) < crash.atOperation, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(5))
            }
            killedAt.withLockedValue { $0 = (monotonicNanoseconds(), done.withLockedValue { $0 }) }
            await crash.action()
        }
        var outcome = Outcome()
        outcome.models = Array(repeating: [:], count: clients.count)
        var spans: [Span] = []
        try await withThrowingTaskGroup(of: (Int, [Span], Int, [String: [UInt8]]).self) { group in
            for (index, client) in clients.enumerated() {
                let count = operations / clients.count + (index < operations % clients.count ? 1 : 0)
                group.addTask { try await Self.runClient(client, index: index, count: count, done: done) }
            }
            for try await (index, clientSpans, wrong, model) in group {
                spans += clientSpans
                outcome.wrongResults += wrong
                outcome.models[index] = model
            }
        }
        outcome.latencies = spans.map { $0.end - $0.start }
        outcome.seconds = Double(monotonicNanoseconds() - start) / 1e9
        killer.cancel()
        if let (time, count) = killedAt.withLockedValue({ $0 }) {
            outcome.killedAt = time
            outcome.operationsBeforeKill = count
            outcome.resumedAfterKill = spans.filter { $0.start > time }.map(\.end).min().map { $0 - time }
        }
        progress.cancel()
        _ = await progress.value
        print("")
        return outcome
    }

    static func runClient(_ client: ThemisClient, index: Int, count: Int, done: NIOLockedValueBox<Int>)
        async throws -> (Int, [Span], Int, [String: [UInt8]])
    {
        var model: [String: [UInt8]] = [:]
        var spans: [Span] = []
        var wrong = 0
        for step in 0..<count {
            let key = "c\(index)-k\(step % 25)"
            let operation: KeyValueOperation
            let expected: KeyValueResult
            switch step % 10 {
            case 0..<6:
                let value = Array("v\(index)-\(step)".utf8)
                operation = .put(key: key, value: value)
                expected = .ok
                model[key] = value
            case 6..<9:
                operation = .get(key: key)
                expected = .value(model[key])
            default:
                operation = .delete(key: key)
                expected = .ok
                model[key] = nil
            }
            let began = monotonicNanoseconds()
            let result = try KeyValueResult(decoding: try await client.invoke(operation.encoded()))
            spans.append((began, monotonicNanoseconds()))
            if result != expected { wrong += 1 }
            done.withLockedValue { $0 += 1 }
        }
        return (index, spans, wrong, model)
    }

    /// Reads every key of every model back through the cluster; returns the number of mismatches.
    func readBack(_ models: [[String: [UInt8]]]) async throws -> Int {
        var wrong = 0
        var keys = 0
        for (index, model) in models.enumerated() {
            for step in 0..<25 {
                let key = "c\(index)-k\(step)"
                let result = try KeyValueResult(decoding: try await clients[index].invoke(KeyValueOperation.get(key: key).encoded()))
                keys += 1
                if result != .value(model[key]) { wrong += 1 }
            }
        }
        print("read back \(keys) keys: \(wrong) differ from the model")
        return wrong
    }

    static func showProgress(done: NIOLockedValueBox<Int>, total: Int, start: UInt64) async {
        let terminal = isatty(1) != 0
        var lastPrinted = -1
        while !Task.isCancelled {
            let count = done.withLockedValue { $0 }
            let seconds = Double(monotonicNanoseconds() - start) / 1e9
            let rate = seconds > 0 ? Int(Double(count) / seconds) : 0
            let width = 30
            let filled = total > 0 ? count * width / total : width
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            let line = "[\(bar)] \(count)/\(total) ops  \(rate) ops/s"
            if terminal {
                print("\r\(line)", terminator: "")
                fflush(nil)
            } else if count * 4 / max(total, 1) != lastPrinted {
                lastPrinted = count * 4 / max(total, 1)
                print(line)
            }
            if count >= total { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
