// Proves that the benchmark and counter applications are deterministic, count what they execute, and
// restore exactly from their snapshots while refusing snapshots of the wrong size, by running two
// instances side by side.
import Testing
import ThemisApps
import ThemisCore

@Suite struct SmallApplicationsTests {
    let client = ClientID(3)

    @Test(arguments: [0, 1, 8, 9, 100, 4096])
    func benchmarkRepliesHaveTheRequestedSize(replyBytes: Int) async {
        var application = BenchmarkApplication(replyBytes: replyBytes)
        let first = await application.execute([1, 2, 3], from: client)
        let second = await application.execute([], from: client)
        #expect(first.count == replyBytes)
        #expect(second.count == replyBytes)
        #expect(application.executedCount == 2)
    }

    @Test func benchmarkResultsDependOnTheCountOnly() async throws {
        var first = BenchmarkApplication(replyBytes: 64)
        var second = BenchmarkApplication(replyBytes: 64)
        for index in 0..<10 {
            let resultA = await first.execute([UInt8(index)], from: client)
            let resultB = await second.execute([], from: ClientID(9))
            #expect(resultA == resultB)
        }
        #expect(Array(await first.execute([], from: client).prefix(8)) == [0, 0, 0, 0, 0, 0, 0, 11])
        let snapshot = await first.snapshot()
        var restored = BenchmarkApplication(replyBytes: 64)
        try await restored.restore(from: snapshot)
        #expect(restored == first)
        #expect(await restored.snapshot() == snapshot)
        await #expect(throws: SnapshotError.wrongLength(expected: 8, got: 3)) { try await restored.restore(from: [1, 2, 3]) }
        #expect(restored == first)
    }

    @Test func benchmarkReadsLeaveTheCountAsItIs() async {
        var application = BenchmarkApplication(replyBytes: 8)
        _ = await application.execute([1], from: client)
        let read = await application.execute([BenchmarkApplication.readMarker, 1, 2], from: client)
        #expect(read == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(application.executedCount == 1)
    }

    @Test func theCounterIncrements() async {
        var counter = CounterApplication()
        #expect(CounterApplication.value(in: await counter.execute(CounterApplication.increment(by: 5), from: client)) == 5)
        #expect(CounterApplication.value(in: await counter.execute(CounterApplication.increment(by: 2), from: client)) == 7)
        #expect(counter.value == 7)
        counter = CounterApplication(value: .max)
        #expect(CounterApplication.value(in: await counter.execute(CounterApplication.increment(by: 2), from: client)) == 1)
    }

    @Test func aMalformedCounterOperationChangesNothing() async {
        var counter = CounterApplication(value: 4)
        #expect(await counter.execute([1, 2, 3], from: client) == [])
        #expect(await counter.execute([], from: client) == [])
        #expect(counter.value == 4)
    }

    @Test func theCounterRestoresFromItsSnapshot() async throws {
        var counter = CounterApplication()
        _ = await counter.execute(CounterApplication.increment(by: 1234), from: client)
        var restored = CounterApplication()
        try await restored.restore(from: await counter.snapshot())
        #expect(restored == counter)
        await #expect(throws: SnapshotError.wrongLength(expected: 8, got: 9)) {
            try await restored.restore(from: [UInt8](repeating: 0, count: 9))
        }
        #expect(restored.value == 1234)
    }
}
