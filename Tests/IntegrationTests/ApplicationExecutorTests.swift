// Proves that a replica never executes on a state it is unsure of (issue 9, finding 7): when the
// application refuses a snapshot fetched by state transfer, the executor reports the failure once and
// runs no later batch (before, it logged the failure and went on executing on the old state).
import Synchronization
import Testing
import ThemisCore
@testable import ThemisReplica

/// Counts executed operations; refuses every snapshot.
struct RefusingApplication: Application {
    struct Refused: Error {}
    var executed = 0

    mutating func execute(_ operation: [UInt8], from client: ClientID) async -> [UInt8] {
        executed += 1
        return [UInt8(truncatingIfNeeded: executed)]
    }

    func snapshot() async -> [UInt8] { [UInt8(truncatingIfNeeded: executed)] }

    mutating func restore(from snapshot: [UInt8]) async throws { throw Refused() }
}

/// Counts as `RefusingApplication`, on the protocol loop (`SynchronousApplication`); reads answer the count.
struct RefusingSynchronousApplication: SynchronousApplication {
    var executed = 0

    mutating func executeSynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8] {
        executed += 1
        return [UInt8(truncatingIfNeeded: executed)]
    }

    func executeReadOnlySynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8]? {
        operation == [0] ? nil : [UInt8(truncatingIfNeeded: executed)]
    }

    func snapshotSynchronously() -> [UInt8] { [UInt8(truncatingIfNeeded: executed)] }

    /// Takes a one-byte snapshot (the count); refuses anything else.
    mutating func restoreSynchronously(from snapshot: [UInt8]) throws {
        guard snapshot.count == 1 else { throw RefusingApplication.Refused() }
        executed = Int(snapshot[0])
    }
}

extension IntegrationSuite {
@Suite("Application executor")
struct ApplicationExecutorTests {
    @Test("An application that refuses a snapshot stops the executor: the failure is reported and no later batch runs")
    func refusedSnapshotStops() async {
        let executor = ApplicationExecutor()
        let executed = Mutex<[UInt64]>([])
        let failures = Mutex<[String]>([])
        let request = Request(client: ClientID(1), timestamp: Timestamp(1), operation: [1])
        executor.submit(.batch(ExecutionBatch(sequence: SequenceNumber(1), view: View(0), requests: [request], checkpoint: false)))
        executor.submit(.install(SequenceNumber(8), [1, 2, 3]))
        executor.submit(.batch(ExecutionBatch(sequence: SequenceNumber(9), view: View(0), requests: [request], checkpoint: false)))
        executor.finish()
        await executor.run(RefusingApplication()) { sequence, _, _ in
            executed.withLock { $0.append(sequence.rawValue) }
        } onFailure: { message in
            failures.withLock { $0.append(message) }
        }
        #expect(executed.withLock { $0 } == [1])
        let reported = failures.withLock { $0 }
        #expect(reported.count == 1)
        #expect(reported.first?.contains("application refused the snapshot of checkpoint 8") == true)
    }

    @Test("Inline (SynchronousApplication): jobs queued before runInline run first, in order; later ones run inside submit; a refused snapshot stops it as in a task")
    func inlineRunsInOrderAndStops() {
        let executor = ApplicationExecutor(inline: true)
        let log = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        let request = Request(client: ClientID(1), timestamp: Timestamp(1), operation: [1])
        func batch(_ sequence: UInt64, checkpoint: Bool = false) -> ApplicationExecutor.Job {
            .batch(ExecutionBatch(sequence: SequenceNumber(sequence), view: View(0), requests: [request, request], checkpoint: checkpoint))
        }
        // Before the application runs (a data directory's recovery submits this early): queued.
        executor.submit(batch(1))
        executor.submit(.status { sequence, _ in log.withLock { $0.append("status \(sequence.rawValue)") } })
        #expect(log.withLock { $0 }.isEmpty)
        executor.runInline(RefusingSynchronousApplication()) { sequence, results, snapshot in
            log.withLock { $0.append("executed \(sequence.rawValue) \(results) \(snapshot.map { "\($0)" } ?? "-")") }
        } onFailure: { message in
            failures.withLock { $0.append(message) }
        }
        #expect(log.withLock { $0 } == ["executed 1 [[1], [2]] -", "status 1"])
        // Once it runs, every job has run when submit returns.
        executor.submit(batch(2, checkpoint: true))
        executor.submit(.readOnly([request, Request(client: ClientID(2), timestamp: Timestamp(1), operation: [0])]) { results in
            log.withLock { $0.append("read \(results)") }
        })
        #expect(log.withLock { $0 }.suffix(2) == ["executed 2 [[3], [4]] [4]", "read [Optional([4]), nil]"])
        // A snapshot it takes: the state is the snapshot's, the last executed sequence the checkpoint's.
        executor.submit(.install(SequenceNumber(6), [9]))
        executor.submit(.status { sequence, digest in log.withLock { $0.append("status \(sequence.rawValue) \(digest == Digest.of([9]))") } })
        #expect(log.withLock { $0 }.last == "status 6 true")
        // A refused snapshot: reported once, nothing after it runs.
        executor.submit(.install(SequenceNumber(8), [1, 2, 3]))
        executor.submit(batch(9))
        executor.submit(.status { sequence, _ in log.withLock { $0.append("status \(sequence.rawValue)") } })
        #expect(log.withLock { $0 }.count == 5)
        let reported = failures.withLock { $0 }
        #expect(reported.count == 1)
        #expect(reported.first?.contains("application refused the snapshot of checkpoint 8") == true)
    }

    @Test("Inline: after finish() nothing more runs, as a finished stream runs nothing more in task mode")
    func inlineFinish() {
        let executor = ApplicationExecutor(inline: true)
        let executed = Mutex<[UInt64]>([])
        executor.runInline(RefusingSynchronousApplication()) { sequence, _, _ in
            executed.withLock { $0.append(sequence.rawValue) }
        } onFailure: { _ in }
        let request = Request(client: ClientID(1), timestamp: Timestamp(1), operation: [1])
        executor.submit(.batch(ExecutionBatch(sequence: SequenceNumber(1), view: View(0), requests: [request], checkpoint: false)))
        executor.finish()
        executor.submit(.batch(ExecutionBatch(sequence: SequenceNumber(2), view: View(0), requests: [request], checkpoint: false)))
        #expect(executed.withLock { $0 } == [1])
    }
}
}
