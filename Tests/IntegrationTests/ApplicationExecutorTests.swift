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
}
}
