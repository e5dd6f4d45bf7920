import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore

extension IntegrationSuite {
@Suite("Read-only requests with real processes")
struct ReadOnlyProcessTests {
    @Test("Reads complete without ordering while every replica answers; with one replica killed they are ordered and still right; a write sent as a read is ordered")
    func readsWithAndWithoutAllReplicas() async throws {
        let processes = try ReplicaProcesses(auth: "hmac")
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let writer = try processes.client(0, group: group)
        let reader = try processes.client(1, group: group)
        let misuser = try processes.client(2, group: group)
        try await processes.waitUntilReady(writer)
        let writes = try await writeKeys(writer, prefix: "ro", count: 30)
        #expect(try await readBackAll(writes, via: reader, readOnly: true) == 0)
        let healthy = await reader.readOnlyStatistics()
        // A replica may still be executing the last writes when the first reads arrive (a mismatch, ordered).
        #expect(healthy.completed >= 20, "\(healthy.completed) of 30 reads completed without ordering, \(healthy.fellBack) ordered")

        // A put sent as a read: no replica answers it read-only (the application refuses), so it is ordered.
        let counter = "ro-counter"
        _ = try await writer.invoke(KeyValueOperation.put(key: counter, value: [1]).encoded())
        let asRead = try KeyValueResult(decoding: try await misuser.invokeReadOnly(KeyValueOperation.put(key: counter, value: [2]).encoded()))
        #expect(asRead == .ok)
        #expect(await misuser.readOnlyStatistics() == (completed: 0, fellBack: 1))
        #expect(try KeyValueResult(decoding: try await writer.invoke(KeyValueOperation.get(key: counter).encoded())) == .value([2]))

        processes.kill(3)
        let before = await reader.readOnlyStatistics()
        let started = Date()
        #expect(try await readBackAll(writes, via: reader, readOnly: true) == 0)
        let elapsed = Date().timeIntervalSince(started)
        let after = await reader.readOnlyStatistics()
        #expect(after.completed == before.completed, "no read can gather all 4 replies with one replica down")
        #expect(after.fellBack - before.fellBack == 30)
        // One read waits for the retransmission interval (500 ms), the next ones are ordered at once.
        #expect(elapsed < 10, "30 reads took \(elapsed) s with one replica down")
        print("read-only: \(healthy.completed) of 30 reads unordered with 4 replicas up; with one down, 30 reads ordered in \(String(format: "%.2f", elapsed)) s")
        await writer.close()
        await reader.close()
        await misuser.close()
        try await group.shutdownGracefully()
    }
}
}
