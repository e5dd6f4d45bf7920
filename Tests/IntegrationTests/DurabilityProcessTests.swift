// Proves durable mode with real processes (PBFT, --data-dir): kill -9 of the whole cluster during writes and a
// restart from the data directories lose no acknowledged write; a torn last record is cut off; a corrupt
// snapshot is a clear start-up error, and --recover-from-peers fetches the state instead; a failing disk stops
// the replica with a clear message while the others serve on.
import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisWire
@testable import ThemisStorage

extension IntegrationSuite {
@Suite("Durable mode with real processes")
struct DurabilityProcessTests {
    /// Waits until every replica has executed as far as the others with the same application digest. A replica
    /// that missed the last batches of an idle cluster learns of them only from a later checkpoint: if the
    /// states do not agree within 5 s, a few more writes (one checkpoint interval of the tests' clusters) bring
    /// one, up to three times. Prints what the replicas reported if they never agree.
    func statesAgree(_ client: ThemisClient, replicas: Int) async throws -> Bool {
        var last: [String] = []
        for round in 0..<4 {
            for _ in 0..<50 {
                let reports = await (0..<replicas).asyncMap { try? await client.status(of: ReplicaID(UInt32($0)), timeoutMilliseconds: 500) }
                let present = reports.compactMap { $0 }
                if present.count == replicas, Set(present.map(\.lastExecuted)).count == 1, Set(present.map(\.applicationDigest)).count == 1 {
                    return true
                }
                last = reports.enumerated().map { "replica \($0.offset): " + ($0.element.map { "executed \($0.lastExecuted.rawValue), digest \($0.applicationDigest)" } ?? "no answer") }
                try await Task.sleep(for: .milliseconds(100))
            }
            guard round < 3 else { break }
            _ = try await writeKeys(client, prefix: "settle-\(round)", count: 25)
        }
        print("states never agreed: \(last.joined(separator: "; "))")
        return false
    }

    @Test("kill -9 of every replica during writes, restart from the data directories: every acknowledged write is readable and the states agree")
    func wholeClusterRestart() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 20, auth: "hmac", durable: true)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<4).map { try processes.client($0, group: group, deadlineMilliseconds: 60_000) }
        try await processes.waitUntilReady(clients[0])
        let killTime = LockedBox<Date?>(nil)
        let writes = try await writeWhile(clients, count: 300) {
            try await Task.sleep(for: .milliseconds(700))
            for id in 0..<4 { processes.kill(id) }
            killTime.set(Date())
            try await Task.sleep(for: .milliseconds(300))
            for id in 0..<4 { try processes.start(id) }
        }
        #expect(writes.count == 1200)
        let kill = try #require(killTime.get())
        let acknowledgedBefore = writes.filter { $0.3 < kill }.count
        print("whole-cluster kill -9 after \(acknowledgedBefore) acknowledged writes; writes resumed \(String(format: "%.2f", outage(after: kill, writes) ?? -1)) s after it")
        #expect(acknowledgedBefore > 0 && acknowledgedBefore < 1200, "the kill must fall in the middle of the writes")
        #expect(try await readBackAll(writes, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[1], replicas: 4))
        for id in 0..<4 {
            let log = processes.log(of: id)
            #expect(log.contains("durable mode"), "replica \(id) log: \(log.suffix(1500))")
            #expect(log.contains("restored from the write-ahead log"))
        }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("Hybster: kill -9 of all 3 replicas during writes, twice, each time restarted from the data directories: every acknowledged write is readable, the states agree, and --trusted-counter process is refused in durable mode")
    func hybsterWholeClusterRestart() async throws {
        let processes = try ReplicaProcesses(replicas: 3, checkpointInterval: 20, auth: "hmac", protocolName: "hybster", durable: true)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<3).map { try processes.client($0, group: group, deadlineMilliseconds: 60_000) }
        try await processes.waitUntilReady(clients[0])
        var all: [(String, [UInt8], Date, Date)] = []
        for round in 0..<2 {
            let killTime = LockedBox<Date?>(nil)
            let writes = try await writeWhile(clients, count: 150) {
                try await Task.sleep(for: .milliseconds(600))
                for id in 0..<3 { processes.kill(id) }
                killTime.set(Date())
                try await Task.sleep(for: .milliseconds(300))
                for id in 0..<3 { try processes.start(id) }
            }
            let kill = try #require(killTime.get())
            let acknowledgedBefore = writes.filter { $0.3 < kill }.count
            print("hybster power cut \(round + 1) after \(acknowledgedBefore) acknowledged writes; writes resumed \(String(format: "%.2f", outage(after: kill, writes) ?? -1)) s after it")
            #expect(acknowledgedBefore > 0 && acknowledgedBefore < writes.count, "the kill must fall in the middle of the writes")
            // The same keys each round: the later value must win.
            all = all.filter { old in !writes.contains { $0.0 == old.0 } } + writes
        }
        #expect(try await readBackAll(all, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[1], replicas: 3))
        for id in 0..<3 {
            #expect(processes.log(of: id).contains("restored from the data directory"), "replica \(id) log: \(processes.log(of: id).suffix(1500))")
        }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
        // The separate counter process cannot be resumed from the log: refused with the reason.
        let refused = try runCapturing(processes.binary, ["replica", "--config", processes.directory + "/cluster.json", "--id", "0",
                                                         "--data-dir", processes.dataDirectory(of: 0), "--trusted-counter", "process"])
        #expect(refused.status == 1 && refused.output.contains("--trusted-counter process is for in-memory mode"), "\(refused.output)")
    }

    @Test("SIGTERM of every replica during writes: each drains and exits 0; restarted from their data directories, every acknowledged write is there")
    func gracefulStopDuringLoad() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 20, auth: "hmac", durable: true)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<3).map { try processes.client($0, group: group, deadlineMilliseconds: 60_000) }
        try await processes.waitUntilReady(clients[0])
        let statuses = LockedBox<[Int32?]>([])
        let logs = LockedBox<[String]>([])
        let stopTime = LockedBox<Date?>(nil)
        let writes = try await writeWhile(clients, count: 200) {
            try await Task.sleep(for: .milliseconds(600))
            stopTime.set(Date())
            statuses.set((0..<4).map { processes.terminate($0) })
            logs.set((0..<4).map { processes.log(of: $0) })  // a start begins a new log
            for id in 0..<4 { try processes.start(id) }
        }
        #expect(statuses.get() == [0, 0, 0, 0], "every replica exits 0 after draining")
        let stop = try #require(stopTime.get())
        let acknowledgedBefore = writes.filter { $0.3 < stop }.count
        #expect(acknowledgedBefore > 0 && acknowledgedBefore < writes.count, "the stop must fall in the middle of the writes")
        #expect(try await readBackAll(writes, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[1], replicas: 4))
        var rolls = 0
        for (id, log) in logs.get().enumerated() {
            #expect(log.contains("stopping") && log.contains("data directory closed"), "replica \(id) log: \(log.suffix(1500))")
            // The snapshot of every checkpoint the replica took itself was written ahead (staged when taken), not
            // while frames waited; only a state fetched from the others (state transfer) and the checkpoint that ends
            // the recovery protocol (it restates everything) are written at the roll.
            let counts = log.firstMatch(of: /(\d+) checkpoint rolls \((\d+) snapshots written ahead/)
            let unstaged = log.ranges(of: "state transfer finished").count + log.ranges(of: "recovered: checkpoint").count
            let (all, ahead) = (Int(counts?.1 ?? "") ?? 0, Int(counts?.2 ?? "") ?? 0)
            #expect(counts != nil && all - ahead <= unstaged, "replica \(id) log: \(log.suffix(600))")
            rolls += all
        }
        #expect(rolls > 0)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("A torn last record is cut off; a corrupt snapshot stops the replica with a clear message, and --recover-from-peers fetches the state")
    func tornRecordAndCorruptSnapshot() async throws {
        try await withDurableCluster { processes, clients, before in
        for id in 0..<4 { processes.kill(id) }
        // Replica 1: a record half written when the power went (its header promises more bytes than follow), at
        // the end of the last segment's records (a preallocated segment has zeros after them; the next segment,
        // made ahead, holds zeros only).
        let directory = processes.dataDirectory(of: 1)
        let segments = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }.sorted()
        var lastPath = ""
        for name in segments {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            if bytes.contains(where: { $0 != 0 }) { lastPath = directory + "/" + name }
        }
        let recordsEnd = DataDirectory.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: lastPath)))).validBytes
        #expect(recordsEnd > 8, "the segment has records")
        let last = try FileHandle(forWritingTo: URL(fileURLWithPath: lastPath))
        try last.seek(toOffset: UInt64(recordsEnd))
        last.write(Data([200, 0, 0, 0, 1, 2, 3, 4, 5, 6]))
        try last.close()
        // Replica 2: one bit flipped in every snapshot it has. A kill -9 between writing a new snapshot and
        // deleting the old one leaves two, and only the one its recovered stable checkpoint names is read.
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: processes.dataDirectory(of: 2)).filter { $0.hasSuffix(".state") }
        #expect(!snapshots.isEmpty)
        for name in snapshots {
            let snapshotPath = processes.dataDirectory(of: 2) + "/" + name
            var bytes = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
            bytes[bytes.count - 3] ^= 0x10
            try bytes.write(to: URL(fileURLWithPath: snapshotPath))
        }
        for id in 0..<4 { try processes.start(id) }
        var exited = false
        for _ in 0..<200 where !exited {
            exited = !processes.isRunning(2)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(exited, "a replica with a corrupt snapshot must not start")
        #expect(processes.log(of: 2).contains("is corrupt: checksum mismatch; start with --recover-from-peers"), "\(processes.log(of: 2).suffix(1500))")
        try processes.start(2, extraArguments: ["--recover-from-peers"])
        try await processes.waitUntilReady(clients[0])
        let after = try await writeKeys(clients[1], prefix: "after", count: 30)
        #expect(try await readBackAll(before + after, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[0], replicas: 4))
        #expect(processes.log(of: 1).contains("a record torn by a crash was cut off"))
        #expect(processes.log(of: 2).contains("snapshot discarded; fetching the state from the others"))
        }
    }

    /// A durable cluster (K = 10, HMAC) with two clients and 40 keys written through the first, for `body`.
    func withDurableCluster(
        _ body: (ReplicaProcesses, [ThemisClient], _ before: [(String, [UInt8], Date, Date)]) async throws -> Void
    ) async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 10, auth: "hmac", durable: true)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<2).map { try processes.client($0, group: group, deadlineMilliseconds: 60_000) }
        try await processes.waitUntilReady(clients[0])
        let before = try await writeKeys(clients[0], prefix: "before", count: 40)
        try await body(processes, clients, before)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("A replica whose disk fails (its data directory vanishes under it) stops with a message naming the file and errno; the others serve on")
    func failingDisk() async throws {
        try await withDurableCluster { processes, clients, before in
        // Writes to the open segment still succeed; the next checkpoint's snapshot cannot be created (ENOENT).
        // Moved away in one rename: a recursive delete races the replica writing into the directory (CI once
        // saw it fail with EPERM).
        try FileManager.default.moveItem(atPath: processes.dataDirectory(of: 3), toPath: processes.dataDirectory(of: 3) + ".gone")
        let after = try await writeKeys(clients[1], prefix: "after", count: 30)
        var exited = false
        for _ in 0..<100 where !exited {
            exited = !processes.isRunning(3)
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = processes.log(of: 3)
        #expect(exited, "a replica that cannot persist must stop: \(log.suffix(1500))")
        #expect(log.contains("the data directory failed") && log.contains(processes.dataDirectory(of: 3)) && log.contains("errno 2"),
                "\(log.suffix(1500))")
        #expect(log.contains("replica 3 stopped:"), "\(log.suffix(1500))")
        #expect(try await readBackAll(before + after, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[0], replicas: 3))
        }
    }

    @Test("A replica whose data directory is deleted restarts with nothing: it runs the recovery protocol (no votes until its target checkpoint is stable) and catches up")
    func deletedDataDirectory() async throws {
        try await withDurableCluster { processes, clients, before in
        processes.kill(3)
        try FileManager.default.removeItem(atPath: processes.dataDirectory(of: 3))
        try processes.start(3)
        let after = try await writeKeys(clients[1], prefix: "after", count: 30)
        // Idle now: the primary fills the window with null batches up to the recovering replica's target.
        #expect(try await statesAgree(clients[0], replicas: 4), "replica 3 log: \(processes.log(of: 3).suffix(2000))")
        #expect(try await readBackAll(before + after, via: clients[0]) == 0)
        let log = processes.log(of: 3)
        #expect(log.contains("recovery target: no votes until checkpoint"), "\(log.suffix(2000))")
        #expect(log.contains("recovered: checkpoint"), "\(log.suffix(2000))")
        // Restarted again, it now remembers (its log says the recovery is over): no second recovery.
        processes.kill(3)
        try processes.start(3)
        try await processes.waitUntilReady(clients[0])
        let more = try await writeKeys(clients[1], prefix: "more", count: 10)
        #expect(try await readBackAll(more, via: clients[0]) == 0)
        #expect(try await statesAgree(clients[0], replicas: 4))
        }
    }
}
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}
