// Proves the normal case end to end with real processes: 4 `themis replica` processes on loopback serve
// 2,000 key-value operations from 8 concurrent clients with every read checked against a model, and keep
// serving with a backup killed (kill -9).
import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisWire

/// Runs `count` operations on keys owned by this client and returns how many results differed from the model.
func runModelledWorkload(_ client: ThemisClient, tag: String, count: Int) async throws -> Int {
    var model: [String: [UInt8]] = [:]
    var wrong = 0
    for step in 0..<count {
        let key = "\(tag)-\(step % 17)"
        let operation: KeyValueOperation
        let expected: KeyValueResult
        switch step % 5 {
        case 0, 1, 2:
            let value = Array("\(tag)-value-\(step)".utf8)
            operation = .put(key: key, value: value)
            expected = .ok
            model[key] = value
        case 3:
            operation = .get(key: key)
            expected = .value(model[key])
        default:
            operation = .delete(key: key)
            expected = .ok
            model[key] = nil
        }
        let result = try KeyValueResult(decoding: try await client.invoke(operation.encoded()))
        if result != expected { wrong += 1 }
    }
    for (key, value) in model {
        let result = try KeyValueResult(decoding: try await client.invoke(KeyValueOperation.get(key: key).encoded()))
        if result != .value(value) { wrong += 1 }
    }
    return wrong
}

extension IntegrationSuite {
@Suite("Real replica processes")
struct ClusterTests {
    @Test("4 replicas serve 2,000 operations from 8 concurrent clients; every read matches the model")
    func twoThousandOperations() async throws {
        let processes = try ReplicaProcesses()
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<8).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let wrong = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for (index, client) in clients.enumerated() {
                tasks.addTask { try await runModelledWorkload(client, tag: "c\(index)", count: 250) }
            }
            return try await tasks.reduce(0, +)
        }
        #expect(wrong == 0)
        // Every replica executed the same history: equal sequence numbers give equal state digests.
        var reports: [StatusReport] = []
        for _ in 0..<50 {
            reports = []
            for replica in 0..<4 { reports.append(try await clients[0].status(of: ReplicaID(UInt32(replica)))) }
            if Set(reports.map(\.lastExecuted)).count == 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(Set(reports.map(\.lastExecuted)).count == 1)
        #expect(Set(reports.map(\.applicationDigest)).count == 1)
        #expect(reports.allSatisfy { $0.lastStableCheckpoint.rawValue > 0 }, "checkpoints became stable")
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("8 clients share one connection per replica (a ClientSession); every read matches the model, also after a backup is killed")
    func sharedSession() async throws {
        let processes = try ReplicaProcesses()
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let session = try ClientSession(cluster: processes.cluster, eventLoop: group.next())
        var options = ThemisClient.Options()
        options.deadlineMilliseconds = 20_000
        // Client 0 proves the connections; 1-7 attach to them (their requests are refused otherwise).
        let clients = try (0..<8).map { try ThemisClient(id: ClientID(UInt32($0)), keys: processes.keys(client: $0), session: session, options: options) }
        try await processes.waitUntilReady(clients[0])
        func run(_ tag: String, count: Int) async throws -> Int {
            try await withThrowingTaskGroup(of: Int.self) { tasks in
                for (index, client) in clients.enumerated() {
                    tasks.addTask { try await runModelledWorkload(client, tag: "\(tag)\(index)", count: count) }
                }
                return try await tasks.reduce(0, +)
            }
        }
        #expect(try await run("before", count: 100) == 0)
        processes.kill(3)
        #expect(try await run("after", count: 50) == 0)
        // A client that leaves does not disturb the others; its id can join again (already attached: no-op).
        await clients[7].close()
        #expect(try await runModelledWorkload(clients[1], tag: "last", count: 20) == 0)
        let rejoined = try ThemisClient(id: ClientID(7), keys: processes.keys(client: 7), session: session, options: options)
        #expect(try await runModelledWorkload(rejoined, tag: "rejoined", count: 20) == 0)
        // A second client with an id that is in the session is refused: its calls fail at once.
        let twin = try ThemisClient(id: ClientID(1), keys: processes.keys(client: 1), session: session, options: options)
        await #expect(throws: ThemisClientError.closed) { try await twin.invoke([1]) }
        #expect(try await runModelledWorkload(clients[1], tag: "afterTwin", count: 10) == 0)
        await session.close()
        await #expect(throws: ThemisClientError.closed) { try await clients[2].invoke([1]) }
        await #expect(throws: ThemisClientError.closed) { try await clients[2].status(of: ReplicaID(0)) }
        try await group.shutdownGracefully()
    }

    @Test("The cluster keeps serving with one backup killed (kill -9)")
    func survivesBackupCrash() async throws {
        let processes = try ReplicaProcesses()
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<4).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        #expect(try await runModelledWorkload(clients[0], tag: "before", count: 50) == 0)
        processes.kill(3)
        let wrong = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for (index, client) in clients.enumerated() {
                tasks.addTask { try await runModelledWorkload(client, tag: "after\(index)", count: 100) }
            }
            return try await tasks.reduce(0, +)
        }
        #expect(wrong == 0)
        #expect((0..<3).allSatisfy { processes.isRunning($0) })
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}
}
