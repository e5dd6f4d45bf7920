// Support for the integration tests: a real cluster of `themis replica` processes on loopback
// (free ports, generated keys in a temporary directory), started from the binary SwiftPM built.
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import ThemisClient
import ThemisCore
import ThemisCrypto

/// Every integration suite runs inside this one, one test at a time: each starts a cluster of real
/// processes, and two at once on 2 cores would only slow both (and stretch their timeouts).
@Suite("Integration: real replica processes", .serialized)
struct IntegrationSuite {}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

final class ReplicaProcesses: Sendable {
    let directory: String
    let cluster: ClusterFile
    private let running = Mutex<[Int: Process]>([:])
    let binary: String
    /// `themis replica --app` and its extra flags, for replica i.
    let application: @Sendable (Int) -> [String]
    /// Durable mode: replica i keeps its write-ahead log and snapshots in `dataDirectory(of: i)`.
    let durable: Bool
    /// Replica i serves `/metrics`, `/status` and `/health` on `httpBasePort + i` (nil: no endpoint).
    let httpBasePort: Int?
    /// The command that replica i is started under (e.g. `ip netns exec NS`); empty: started directly.
    let launcher: @Sendable (Int) -> [String]

    var processes: [Int: Process] { running.withLock { $0 } }

    /// Generates keys with `themis keygen` and starts `replicas` replica processes.
    init(replicas: Int = 4, clients: Int = 10, checkpointInterval: Int = 50, auth: String = "ed25519",
         application: [String] = ["kv"], protocolName: String = "pbft", durable: Bool = false, http: Bool = false,
         applicationOf: (@Sendable (Int) -> [String])? = nil, hosts: [String]? = nil,
         launcher: @escaping @Sendable (Int) -> [String] = { _ in [] }, keygenArguments: [String] = []) throws {
        binary = try ReplicaProcesses.themisBinary()
        self.application = applicationOf ?? { _ in application }
        self.launcher = launcher
        self.durable = durable
        httpBasePort = http ? try ReplicaProcesses.freePortRange(count: replicas) : nil
        directory = NSTemporaryDirectory() + "themis-it-\(UUID().uuidString.prefix(8))"
        // Replicas on hosts of their own (network namespaces) have every port free.
        let basePort = hosts == nil ? try ReplicaProcesses.freePortRange(count: replicas) : 7000
        try ReplicaProcesses.runToCompletion(binary, ["keygen", "--protocol", protocolName, "--replicas", "\(replicas)", "--clients", "\(clients)",
            "--out", directory, "--base-port", "\(basePort)", "--auth", auth] + (hosts.map { ["--hosts", $0.joined(separator: ",")] } ?? []) + [
            "--checkpoint-interval", "\(checkpointInterval)"] + keygenArguments)
        cluster = try ClusterFile.load(path: directory + "/cluster.json")
        for id in 0..<replicas { try start(id, extraArguments: durable ? [] : ["--first-start"]) }
    }

    func dataDirectory(of id: Int) -> String { directory + "/replica-\(id).data" }

    func start(_ id: Int, extraArguments: [String] = []) throws {
        let process = Process()
        let prefix = launcher(id)
        process.executableURL = URL(fileURLWithPath: prefix.first ?? binary)
        process.arguments = Array(prefix.dropFirst()) + (prefix.isEmpty ? [] : [binary]) + ["replica", "--config", directory + "/cluster.json", "--id", "\(id)"]
            + (durable ? ["--data-dir", dataDirectory(of: id)] : []) + (httpBasePort.map { ["--http-port", "\($0 + id)"] } ?? [])
            + extraArguments + ["--app"] + application(id)
        let log = directory + "/replica-\(id).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        running.withLock { $0[id] = process }
    }

    /// kill -9.
    func kill(_ id: Int) {
        guard let process = processes[id] else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func isRunning(_ id: Int) -> Bool { processes[id]?.isRunning ?? false }

    /// SIGTERM (a graceful stop), waits for the exit; the exit status, or nil if the process ended by a signal.
    func terminate(_ id: Int) -> Int32? {
        guard let process = processes[id] else { return nil }
        process.terminate()
        process.waitUntilExit()
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    func stopAll() {
        for (_, process) in processes where process.isRunning {
            process.terminate()
        }
        for (_, process) in processes { process.waitUntilExit() }
        if ProcessInfo.processInfo.environment["THEMIS_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func keys(client: Int) throws -> PrivateKeys {
        try ClusterFile.loadKeys(path: KeyGeneration.keyPath(directory: directory, principal: .client(ClientID(UInt32(client))))).keys
    }

    func client(_ id: Int, group: any EventLoopGroup, deadlineMilliseconds: Int64 = 20_000) throws -> ThemisClient {
        var options = ThemisClient.Options()
        options.deadlineMilliseconds = deadlineMilliseconds
        return try ThemisClient(cluster: cluster, id: ClientID(UInt32(id)), keys: keys(client: id), options: options,
                                eventLoopGroup: group)
    }

    /// Waits until every running replica answers a status query.
    func waitUntilReady(_ client: ThemisClient, timeoutSeconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        for id in processes.keys.sorted() {
            while (try? await client.status(of: ReplicaID(UInt32(id)), timeoutMilliseconds: 500))?.connectedReplicas
                != UInt32(processes.count - 1) {
                if Date() > deadline { throw TestFailure(description: "replica \(id) did not come up; log: \(log(of: id))") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Waits until replica `id` has executed as far as replica 0, with the same application digest; the
    /// seconds it took, or nil after `rounds` polls 100 ms apart. `nudge`, if given, runs once a second while it
    /// waits: a replica behind an idle cluster may learn how far the others are only from a later checkpoint
    /// (README "Known limits"), so a test that is not about that keeps some writes going.
    func waitUntilCaughtUp(_ id: Int, via client: ThemisClient, rounds: Int = 300,
                           nudge: (() async throws -> Void)? = nil) async throws -> Double? {
        let started = Date()
        for round in 0..<rounds {
            if let nudge, round > 0, round % 10 == 0 { try await nudge() }
            let reference = try await client.status(of: ReplicaID(0))
            if let report = try? await client.status(of: ReplicaID(UInt32(id)), timeoutMilliseconds: 1_000),
                report.lastExecuted == reference.lastExecuted, report.applicationDigest == reference.applicationDigest
            {
                return Date().timeIntervalSince(started)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    func log(of id: Int) -> String {
        (try? String(contentsOfFile: directory + "/replica-\(id).log", encoding: .utf8)) ?? "(no log)"
    }

    /// The `themis` executable next to the test bundle.
    static func themisBinary() throws -> String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("themis").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/themis"
        if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
        throw TestFailure(description: "themis binary not found near \(CommandLine.arguments[0])")
    }

    static func runToCompletion(_ binary: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure(description: "themis \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }

    /// `count` consecutive ports that are free now.
    static func freePortRange(count: Int) throws -> Int {
        for _ in 0..<100 {
            // Below Linux's default ephemeral range (32768-60999), from which outgoing connections take their
            // source ports: a CI run failed when a restarted replica found its port taken ("Address already in
            // use") by some connection's source port while it was down.
            let base = Int.random(in: 20_000...(32_767 - count))
            let free = (0..<count).allSatisfy { offset in
                guard let channel = try? ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: base + offset).wait() else { return false }
                try? channel.close().wait()
                return true
            }
            if free { return base }
        }
        throw TestFailure(description: "no free port range")
    }
}

/// One event loop shared by the tests' clients.
enum NIOSingleThreaded {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
}
