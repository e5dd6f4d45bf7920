// Proves recovery of a restarted replica with real processes: kill -9 a backup, run more than three
// checkpoint intervals of writes, restart it with empty state; it fetches the stable checkpoint's state
// and the batches after it, and its state digest ends equal to the others'. Prints the catch-up time.
import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisWire

extension IntegrationSuite {
@Suite("Recovery with real processes")
struct RecoveryTests {
    @Test("A backup restarted empty after 3+ checkpoint intervals catches up through state transfer")
    func restartedBackupCatchesUp() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 50)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<2).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        processes.kill(3)
        let before = try await writeKeys(clients[0], prefix: "before", count: 200)  // 200 sequence numbers: 4 intervals
        try processes.start(3)
        let restarted = Date()
        let after = try await writeKeys(clients[1], prefix: "after", count: 60)
        var caughtUp: Double?
        for _ in 0..<300 {
            let reference = try await clients[0].status(of: ReplicaID(0))
            if let report = try? await clients[0].status(of: ReplicaID(3), timeoutMilliseconds: 500),
                report.lastExecuted == reference.lastExecuted, report.applicationDigest == reference.applicationDigest
            {
                caughtUp = Date().timeIntervalSince(restarted)
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let seconds = try #require(caughtUp, "replica 3 did not catch up; log: \(processes.log(of: 3).suffix(2000))")
        print("restarted backup caught up \(String(format: "%.2f", seconds)) s after its restart")
        #expect(processes.log(of: 3).contains("state transfer finished"))
        #expect(try await readBackAll(before + after, via: clients[0]) == 0)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}
}
