// Proves the out-of-process application host with real processes: every replica runs the Python key-value
// application (examples/python/kv_app.py) through `--app-command`; clients' operations are checked against a
// model; a replica restarted empty catches up by state transfer through the application's chunked snapshot
// and restore (a state of several MiB); the application killed under one replica stops that replica with a
// clear message while the cluster keeps serving; an application that breaks the protocol at start-up is a
// clear start-up error.
import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore

/// `--app kv --app-command "python3 .../examples/python/kv_app.py"` (the command replaces `--app`).
let pythonKeyValueApplication: [String] = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return ["kv", "--app-command", "python3 \(root.path)/examples/python/kv_app.py"]
}()

/// Runs `python3 ARGUMENTS`; its exit status and output (stdout and stderr).
func runPython(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try runCapturing("/usr/bin/env", ["python3"] + arguments)
}

/// Runs `executable ARGUMENTS`; its exit status and output (stdout and stderr together).
func runCapturing(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}

/// The pid of `parent`'s child process whose command line contains `marker`.
func childProcess(of parent: Int32, containing marker: String) -> Int32? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, Int32(fields[1]) == parent,
            let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            command.contains(marker)
        else { continue }
        return pid
    }
    return nil
}

extension IntegrationSuite {
@Suite("Application in its own process (Python key-value application)")
struct ApplicationProcessTests {
    @Test("4 replicas running the Python application serve 8 concurrent clients' puts, gets (ordered and read-only) and deletes, every result checked against a model; all state digests equal")
    func pythonApplicationServes() async throws {
        let processes = try ReplicaProcesses(auth: "hmac", application: pythonKeyValueApplication)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<8).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let operations = 125
        let mismatches = try await withThrowingTaskGroup(of: [String].self) { tasks in
            for (index, client) in clients.enumerated() {
                tasks.addTask {
                    // Each client owns its keys, so its model alone predicts every result.
                    var model: [String: [UInt8]] = [:]
                    var generator = Workload(seed: UInt64(index + 1))
                    var wrong: [String] = []
                    for step in 0..<operations {
                        let key = "c\(index)-k\(generator.next() % 12)"
                        let roll = generator.next() % 10
                        let operation: KeyValueOperation
                        let expected: KeyValueResult
                        if roll < 5 {
                            let value = Array("v\(step)-\(generator.next() % 1000)".utf8) + [UInt8](repeating: UInt8(step % 256), count: Int(generator.next() % 200))
                            operation = .put(key: key, value: value)
                            expected = .ok
                            model[key] = value
                        } else if roll < 9 {
                            operation = .get(key: key)
                            expected = .value(model[key])
                        } else {
                            operation = .delete(key: key)
                            expected = .ok
                            model[key] = nil
                        }
                        let bytes = operation.encoded()
                        let readOnly = roll >= 7 && roll < 9
                        let result = try KeyValueResult(decoding: try await readOnly ? client.invokeReadOnly(bytes) : client.invoke(bytes))
                        if result != expected { wrong.append("client \(index) step \(step) \(operation): \(result), expected \(expected)") }
                    }
                    // A malformed operation gets the same error text as from the Swift store.
                    let malformed = try KeyValueResult(decoding: try await client.invoke([9]))
                    if malformed != .error("malformed operation: unknown tag 9") { wrong.append("malformed: \(malformed)") }
                    return wrong
                }
            }
            var all: [String] = []
            for try await wrong in tasks { all += wrong }
            return all
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        let reports = try await (0..<4).mapAsync { try await clients[0].status(of: ReplicaID(UInt32($0))) }
        let executed = reports.map(\.lastExecuted.rawValue).max() ?? 0
        // Every replica ends at the same sequence number with the same state digest.
        for _ in 0..<50 {
            let now = try await (0..<4).mapAsync { try await clients[0].status(of: ReplicaID(UInt32($0))) }
            if Set(now.map(\.lastExecuted.rawValue)).count == 1, Set(now.map(\.applicationDigest)).count == 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let final = try await (0..<4).mapAsync { try await clients[0].status(of: ReplicaID(UInt32($0))) }
        #expect(Set(final.map(\.applicationDigest)).count == 1, "\(final.map(\.applicationDigest))")
        #expect(executed > 0)
        #expect(processes.log(of: 0).contains("name=python kv"))
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("The Python client (examples/python/kv_client.py, written from docs/WIRE.md) runs 1,000 model-checked operations against replicas running the Python application (HMAC), 200 against Swift replicas (Ed25519), 200 against a TLS cluster (keygen --tls) and 300 with tentative execution (keygen --tentative-execution: it accepts 2f + 1 tentative replies); the Swift client reads what it wrote")
    func pythonClient() async throws {
        let script = pythonKeyValueApplication[2].replacingOccurrences(of: "kv_app.py", with: "kv_client.py").replacingOccurrences(of: "python3 ", with: "")
        for (auth, application, operations, keygen) in [("hmac", pythonKeyValueApplication, 1_000, []), ("ed25519", ["kv"], 200, []),
                                                        ("hmac", ["kv"], 200, ["--tls"]), ("hmac", ["kv"], 300, ["--tentative-execution"])] {
            let processes = try ReplicaProcesses(auth: auth, application: application, keygenArguments: keygen)
            defer { processes.stopAll() }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let client = try processes.client(0, group: group)
            try await processes.waitUntilReady(client)
            let config = processes.directory + "/cluster.json"
            let check = try runPython([script, "--config", config, "--client", "3", "check", "--operations", "\(operations)", "--seed", "7"])
            #expect(check.status == 0, "\(auth): \(check.output)")
            #expect(check.output.contains("checked \(operations) operations: 0 mismatches"), "\(auth): \(check.output)")
            let put = try runPython([script, "--config", config, "--client", "2", "put", "from-python", "hello"])
            #expect(put.status == 0 && put.output == "OK\n", "\(put.output)")
            let read = try KeyValueResult(decoding: try await client.invoke(KeyValueOperation.get(key: "from-python").encoded()))
            #expect(read == .value(Array("hello".utf8)))
            if keygen == ["--tentative-execution"] {
                // Past the first stable checkpoint (K = 50) replicas reply tentatively: the Python client accepted those results
                // on 2f + 1 matching tentative replies (docs/WIRE.md 5.1a, 6.3), and the Swift client's read above too.
                let tentative = check.output.split(separator: ",").first { $0.hasSuffix("on tentative replies") }
                    .flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
                #expect(tentative > 0, "\(check.output)")
            }
            print("python client, \(auth)\(keygen.isEmpty ? "" : " with \(keygen.joined(separator: " "))"): \(check.output.trimmingCharacters(in: .whitespacesAndNewlines))")
            await client.close()
            try await group.shutdownGracefully()
        }
    }

    @Test("A replica restarted empty catches up by state transfer through the Python application's chunked snapshot and restore (a state of about 6 MiB, 6 chunks)")
    func restartedReplicaRestoresApplication() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 20, auth: "hmac", application: pythonKeyValueApplication)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<2).map { try processes.client($0, group: group, deadlineMilliseconds: 30_000) }
        try await processes.waitUntilReady(clients[0])
        processes.kill(3)
        var writes: [(String, [UInt8])] = []
        for index in 0..<100 {
            let value = Array("big-\(index)-".utf8) + [UInt8](repeating: UInt8(index), count: 60_000)
            let result = try KeyValueResult(decoding: try await clients[0].invoke(KeyValueOperation.put(key: "big-\(index)", value: value).encoded()))
            #expect(result == .ok)
            writes.append(("big-\(index)", value))
        }
        try processes.start(3)
        let restarted = Date()
        for index in 0..<40 {
            let value = Array("after-\(index)".utf8)
            _ = try await clients[1].invoke(KeyValueOperation.put(key: "after-\(index)", value: value).encoded())
            writes.append(("after-\(index)", value))
        }
        let caughtUp = try await processes.waitUntilCaughtUp(3, via: clients[0]) {
            _ = try await clients[1].invoke(KeyValueOperation.put(key: "nudge", value: [1]).encoded())
        }
        _ = try #require(caughtUp, "replica 3 did not catch up; log: \(processes.log(of: 3).suffix(2000))")
        let seconds = Date().timeIntervalSince(restarted)
        print("python application: restarted replica caught up \(String(format: "%.2f", seconds)) s after its restart")
        #expect(processes.log(of: 3).contains("state transfer finished"))
        // Replica 3 now answers from the restored state: read-only gets need every replica's answer to match.
        var wrong = 0
        for (key, value) in writes {
            let result = try KeyValueResult(decoding: try await clients[0].invokeReadOnly(KeyValueOperation.get(key: key).encoded()))
            if result != .value(value) { wrong += 1 }
        }
        #expect(wrong == 0)
        #expect(await clients[0].readOnlyStatistics().completed > 0)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("Durable mode: kill -9 of every replica (and so every Python application) during writes, restart from the data directories: the applications are restored from the snapshots and the log, every acknowledged write is readable, the states agree")
    func durableRestartRestoresApplications() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 20, auth: "hmac", application: pythonKeyValueApplication, durable: true)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<4).map { try processes.client($0, group: group, deadlineMilliseconds: 60_000) }
        try await processes.waitUntilReady(clients[0])
        let killTime = LockedBox<Date?>(nil)
        let writes = try await writeWhile(clients, count: 150) {
            try await Task.sleep(for: .milliseconds(700))
            for id in 0..<4 { processes.kill(id) }
            killTime.set(Date())
            try await Task.sleep(for: .milliseconds(300))
            for id in 0..<4 { try processes.start(id) }
        }
        let kill = try #require(killTime.get())
        let acknowledgedBefore = writes.filter { $0.3 < kill }.count
        print("python application, durable: whole-cluster kill -9 after \(acknowledgedBefore) acknowledged writes")
        #expect(acknowledgedBefore > 0 && acknowledgedBefore < 600, "the kill must fall in the middle of the writes")
        #expect(try await readBackAll(writes, via: clients[0]) == 0)
        #expect(try await DurabilityProcessTests().statesAgree(clients[1], replicas: 4))
        for id in 0..<4 { #expect(processes.log(of: id).contains("restored from the write-ahead log")) }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("The application killed under one replica: that replica stops with a message naming the application, and the cluster keeps serving")
    func killedApplicationStopsItsReplica() async throws {
        let processes = try ReplicaProcesses(auth: "hmac", application: pythonKeyValueApplication)
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try processes.client(0, group: group)
        try await processes.waitUntilReady(client)
        let before = try await writeKeys(client, prefix: "pre", count: 20)
        let replica = try #require(processes.processes[2]?.processIdentifier)
        let application = try #require(childProcess(of: replica, containing: "kv_app.py"), "no application process under replica 2")
        kill(application, SIGKILL)
        for _ in 0..<100 where processes.isRunning(2) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!processes.isRunning(2), "replica 2 still runs without its application")
        #expect(processes.processes[2]?.terminationStatus == 1)
        let log = processes.log(of: 2)
        #expect(log.contains("application `python3"), "\(log.suffix(600))")
        #expect(log.contains("(pid \(application)) failed: it was killed by signal 9"), "\(log.suffix(600))")
        let after = try await writeKeys(client, prefix: "post", count: 20)
        #expect(try await readBackAll(before + after, via: client) == 0)
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test("--app-socket: replicas drive Python applications that already run on Unix sockets; a killed replica restarted reconnects to a fresh application and catches up; an application that goes away stops its replica")
    func applicationsOnSockets() async throws {
        let directory = NSTemporaryDirectory() + "themis-sockets-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = pythonKeyValueApplication[2].replacingOccurrences(of: "python3 ", with: "")
        let servers = try (0..<4).map { id -> Process in
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            server.arguments = ["python3", script, "--socket", "\(directory)/app-\(id).sock"]
            server.standardError = FileHandle.nullDevice
            try server.run()
            return server
        }
        // SIGKILL: a child of the test process may start with SIGTERM blocked (the mask of the spawning thread).
        defer { for server in servers where server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        for id in 0..<4 {
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: "\(directory)/app-\(id).sock") { try await Task.sleep(for: .milliseconds(50)) }
        }
        let processes = try ReplicaProcesses(checkpointInterval: 10, auth: "hmac", applicationOf: { ["kv", "--app-socket", "\(directory)/app-\($0).sock"] })
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try processes.client(0, group: group)
        try await processes.waitUntilReady(client)
        #expect(processes.log(of: 0).contains("application=at `\(directory)/app-0.sock`"), "\(processes.log(of: 0).suffix(800))")
        processes.kill(3)
        let writes = try await writeKeys(client, prefix: "sock", count: 40)
        try processes.start(3)
        let caughtUp = try await processes.waitUntilCaughtUp(3, via: client, rounds: 200) {
            _ = try await client.invoke(KeyValueOperation.put(key: "nudge", value: [1]).encoded())
        } != nil
        #expect(caughtUp, "replica 3 did not catch up: \(processes.log(of: 3).suffix(1500))")
        #expect(try await readBackAll(writes, via: client, readOnly: true) == 0)
        kill(servers[2].processIdentifier, SIGKILL)
        servers[2].waitUntilExit()
        _ = try await writeKeys(client, prefix: "after", count: 5)
        for _ in 0..<100 where processes.isRunning(2) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!processes.isRunning(2))
        #expect(processes.log(of: 2).contains("application at `\(directory)/app-2.sock` failed: it closed the connection"), "\(processes.log(of: 2).suffix(800))")
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test("Stopping: SIGTERM drains (a backup whose application is still executing a batch waits for it, then exits 0); a second signal during the drain ends the replica at once")
    func secondSignalEndsTheDrain() async throws {
        // Replicas 2 and 3 run the Python application slowed down to 2 s per request, so that a batch is
        // still executing there when the client has its f + 1 = 2 replies from replicas 0 and 1.
        let examples = URL(fileURLWithPath: pythonKeyValueApplication[2].replacingOccurrences(of: "python3 ", with: "")).deletingLastPathComponent().path
        let script = NSTemporaryDirectory() + "themis-slow-app-\(UUID().uuidString.prefix(8)).py"
        try """
            import sys, time
            sys.path.insert(0, \(String(reflecting: examples)))
            import kv_app, themis_app
            class Slow(kv_app.KeyValueApp):
                def execute(self, operation, client):
                    time.sleep(2)
                    return super().execute(operation, client)
            sys.exit(themis_app.main(Slow))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let processes = try ReplicaProcesses(auth: "hmac", applicationOf: { id in id >= 2 ? ["kv", "--app-command", "python3 \(script)"] : ["kv"] })
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try processes.client(0, group: group)
        try await processes.waitUntilReady(client)
        try await Task.sleep(for: .seconds(2.5))  // the readiness probe's own batch has finished everywhere
        let put = KeyValueOperation.put(key: "k", value: Array("v".utf8)).encoded()
        #expect(try KeyValueResult(decoding: try await client.invoke(put)) == .ok)
        try await Task.sleep(for: .milliseconds(300))  // replicas 2 and 3 are now inside their 2 s execution
        let draining = try #require(processes.processes[2]), interrupted = try #require(processes.processes[3])
        let signalled = Date()
        draining.terminate()
        interrupted.terminate()
        try await Task.sleep(for: .milliseconds(400))
        #expect(draining.isRunning && interrupted.isRunning, "both must still be draining (finishing the batch in hand)")
        let second = Date()
        interrupted.terminate()  // the second signal
        // Watched in /proc (a zombie has ended): Foundation's `isRunning` can lag behind by a second or more.
        let pid = interrupted.processIdentifier
        func hasEnded() -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
            return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
        }
        for _ in 0..<100 where !hasEnded() { try await Task.sleep(for: .milliseconds(20)) }
        let ended = Date().timeIntervalSince(second)
        #expect(ended < 1.0, "a second SIGTERM must end the replica at once (it took \(ended) s)")
        interrupted.waitUntilExit()
        #expect(interrupted.terminationReason == .uncaughtSignal && interrupted.terminationStatus == SIGTERM)
        draining.waitUntilExit()
        let drained = Date().timeIntervalSince(signalled)
        #expect(draining.terminationReason == .exit && draining.terminationStatus == 0, "\(processes.log(of: 2).suffix(1500))")
        #expect(drained > 1.0, "the drain must have waited for the batch in execution (\(drained) s)")
        #expect(processes.log(of: 2).contains("stopping"))
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test("An application that breaks the protocol or exits at start-up is a clear start-up error", arguments: [
        ("cat", "goes from the replica to the application, not back"),
        ("sh -c 'exit 3'", "exited with status 3"),
        ("printf garbage-not-a-frame", "broke the protocol: a frame of"),
    ])
    func brokenApplicationAtStartUp(command: String, expected: String) throws {
        let binary = try ReplicaProcesses.themisBinary()
        let directory = NSTemporaryDirectory() + "themis-app-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ReplicaProcesses.runToCompletion(binary, ["keygen", "--replicas", "4", "--clients", "1", "--out", directory,
                                                      "--base-port", "\(try ReplicaProcesses.freePortRange(count: 4))"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["replica", "--config", directory + "/cluster.json", "--id", "0", "--first-start", "--app-command", command]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(output.contains("themis: application `\(command)` at start-up: "), "\(output)")
        #expect(output.contains(expected), "\(output)")
    }
}
}

extension Sequence {
    func mapAsync<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

/// A seeded generator for the workload (splitmix64), so a failing run can be repeated.
struct Workload {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
