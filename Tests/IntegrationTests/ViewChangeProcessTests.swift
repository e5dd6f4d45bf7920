// Proves view change with real processes: kill -9 the primary during a write workload and the cluster
// moves to a new view, every acknowledged write stays readable, and the outage is printed; with n = 7
// (f = 2) two primaries killed one after the other cost two view changes and the cluster still serves.
import Foundation
import NIOPosix
import Synchronization
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisWire

/// Writes `count` distinct keys through one client and returns (key, value, start, end) per acknowledged write.
func writeKeys(_ client: ThemisClient, prefix: String, count: Int, thenWhile more: (@Sendable () -> Bool)? = nil) async throws -> [(String, [UInt8], Date, Date)] {
    var acknowledged: [(String, [UInt8], Date, Date)] = []
    var index = 0
    // `count` writes, then more while `more` says so (at most 20 times `count` in all).
    while index < count || (more?() == true && index < 20 * count) {
        defer { index += 1 }
        let key = "\(prefix)-\(index)"
        let value = Array("\(prefix)-value-\(index)".utf8)
        let started = Date()
        let result = try KeyValueResult(decoding: try await client.invoke(KeyValueOperation.put(key: key, value: value).encoded()))
        guard result == .ok else { throw TestFailure(description: "put \(key) returned \(result)") }
        acknowledged.append((key, value, started, Date()))
    }
    return acknowledged
}

/// Runs writers on every client while `crash` runs; returns all acknowledged writes. With `pastCrash`, each
/// writer goes on after its `count` writes until `crash` returned and it made `pastCrash` more (a test that
/// measures the outage needs writes after the crash, however fast the first `count` were).
func writeWhile(_ clients: [ThemisClient], count: Int, pastCrash: Int = 0, crash: @escaping @Sendable () async throws -> Void) async throws -> [(String, [UInt8], Date, Date)] {
    let crashed = LockedBox<Bool>(false)
    @Sendable func goOn() -> (@Sendable () -> Bool)? {
        guard pastCrash > 0 else { return nil }
        let after = LockedBox<Int>(0)
        return {
            guard crashed.get() else { return true }
            after.set(after.get() + 1)
            return after.get() <= pastCrash
        }
    }
    let all: [(String, [UInt8], Date, Date)] = try await withThrowingTaskGroup(of: [(String, [UInt8], Date, Date)].self) { tasks in
        for (index, client) in clients.enumerated() {
            let more = goOn()
            tasks.addTask { try await writeKeys(client, prefix: "w\(index)", count: count, thenWhile: more) }
        }
        tasks.addTask {
            try await crash()
            crashed.set(true)
            return []
        }
        var all: [(String, [UInt8], Date, Date)] = []
        for try await writes in tasks { all += writes }
        return all
    }
    return all
}

func readBackAll(_ writes: [(String, [UInt8], Date, Date)], via client: ThemisClient, readOnly: Bool = false) async throws -> Int {
    var wrong = 0
    for (key, value, _, _) in writes {
        let get = KeyValueOperation.get(key: key).encoded()
        let result = try KeyValueResult(decoding: try await readOnly ? client.invokeReadOnly(get) : client.invoke(get))
        if result != .value(value) { wrong += 1 }
    }
    return wrong
}

/// Seconds from `kill` until the first write started after it was acknowledged.
func outage(after kill: Date, _ writes: [(String, [UInt8], Date, Date)]) -> Double? {
    writes.filter { $0.2 > kill }.map(\.3).min().map { $0.timeIntervalSince(kill) }
}

extension IntegrationSuite {
@Suite("View change with real processes")
struct ViewChangeProcessTests {
    @Test("kill -9 the primary during writes: a new view takes over and every acknowledged write is readable (also with tentative execution, ordered and read-only)",
          arguments: [false, true])
    func primaryCrashDuringWrites(tentative: Bool) async throws {
        let processes = try ReplicaProcesses(keygenArguments: tentative ? ["--tentative-execution"] : [])
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<4).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let killTime = LockedBox<Date?>(nil)
        let writes = try await writeWhile(clients, count: 120, pastCrash: 10) {
            try await Task.sleep(for: .milliseconds(800))
            killTime.set(Date())
            processes.kill(0)
        }
        let kill = try #require(killTime.get())
        let resumed = try #require(outage(after: kill, writes), "no write started after the kill completed")
        print("primary crash\(tentative ? " (tentative execution)" : ""): progress resumed \(String(format: "%.2f", resumed)) s after kill -9 of replica 0")
        #expect(try await readBackAll(writes, via: clients[1]) == 0)
        // With tentative execution the backups undid what had not committed in view 0 and executed it again:
        // every write acknowledged on tentative replies is there, read by every replica alike.
        if tentative { #expect(try await readBackAll(writes, via: clients[2], readOnly: true) == 0) }
        let report = try await clients[1].status(of: ReplicaID(1))
        #expect(report.view.rawValue >= 1)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("n = 7: the primary is killed twice in a row; two view changes and the cluster still serves")
    func twoPrimariesKilled() async throws {
        let processes = try ReplicaProcesses(replicas: 7, clients: 4, auth: "hmac")
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<3).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let writes = try await writeWhile(clients, count: 150) {
            try await Task.sleep(for: .milliseconds(600))
            processes.kill(0)
            // Wait until the cluster made progress in view 1, then kill its primary too.
            while (try? await clients[0].status(of: ReplicaID(2)))?.view.rawValue ?? 0 < 1 {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(500))
            processes.kill(1)
        }
        #expect(try await readBackAll(writes, via: clients[2]) == 0)
        let report = try await clients[2].status(of: ReplicaID(2))
        #expect(report.view.rawValue >= 2, "two view changes (view is \(report.view.rawValue))")
        #expect(try await runModelledWorkload(clients[0], tag: "after", count: 30) == 0)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}
}

/// A tiny lock-protected box for test bookkeeping across tasks.
final class LockedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func get() -> Value { mutex.withLock { $0 } }
    func set(_ value: Value) { mutex.withLock { $0 = value } }
}
