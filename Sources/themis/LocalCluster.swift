import NIOCore
import NIOPosix
import Subprocess
import SystemPackage
import ThemisClient
import ThemisCore
import ThemisReplicaCommand
import ThemisWire

#if canImport(Glibc)
import Glibc
#endif

/// Replica processes on this machine, each one `themis replica` (this very binary), its output in a log file.
final class LocalCluster: Sendable {
    enum Command: Sendable { case terminate, kill }

    struct Process: Sendable {
        let id: ReplicaID
        let commands: AsyncStream<Command>.Continuation
        let task: Task<Void, Never>
    }

    let directory: String
    let processes: [Process]
    /// Durable local clusters: each replica's `dataDir` in cluster.json (relative to the cluster directory).
    static let dataDirectoryTemplate = "replica-{id}.data"

    /// Starts `count` replicas of the cluster in `directory` (which holds cluster.json and the keys).
    /// - Parameters:
    ///   - extraArguments: more `themis replica` flags (e.g. `--reply-size 10`).
    ///   - durable: the cluster file gives each replica a data directory (`dataDirectoryTemplate`, in
    ///     `directory`): no `--first-start` then.
    ///   - only: start these replicas only (a restart of some of them).
    ///   - firstStart: in-memory mode: the cluster's first start (default: when all are started, `only` nil).
    init(directory: String, count: Int, app: String, extraArguments: [String] = [], durable: Bool = false, only: [Int]? = nil,
         firstStart: Bool? = nil) throws {
        self.directory = directory
        var processes: [Process] = []
        for index in only ?? Array(0..<count) {
            let id = ReplicaID(UInt32(index))
            let log = try FileDescriptor.open(
                FilePath("\(directory)/replica-\(index).log"), .writeOnly,
                options: [.create, .append], permissions: [.ownerReadWrite, .groupRead])
            let (stream, continuation) = AsyncStream.makeStream(of: Command.self)
            let (executable, subcommand) = Self.replicaExecutable()
            // The first start of an in-memory cluster is known as such (no recovery protocol); a restart is not.
            let arguments = subcommand + ["--config", "\(directory)/cluster.json", "--id", "\(index)", "--app", app]
                + (!durable && (firstStart ?? (only == nil)) ? ["--first-start"] : []) + extraArguments
            let task = Task {
                _ = try? await run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    input: .none, output: .fileDescriptor(log, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(log, closeAfterSpawningProcess: false)
                ) { execution in
                    for await command in stream {
                        switch command {
                        case .terminate: try? execution.send(signal: .terminate)
                        case .kill: try? execution.send(signal: .kill)
                        }
                        return
                    }
                }
                try? log.close()
            }
            processes.append(Process(id: id, commands: continuation, task: task))
        }
        self.processes = processes
    }

    /// `themis-replica` next to this binary (smaller resident set), else this binary's `replica` subcommand.
    static func replicaExecutable() -> (path: String, subcommand: [String]) {
        var target = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &target, target.count - 1)
        if length > 0 {
            let path = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let slim = ThemisReplicaCommand.directory(of: path) + "/themis-replica"
            if access(slim, X_OK) == 0 { return (slim, []) }
        }
        return ("/proc/self/exe", ["replica"])
    }

    /// kill -9 one replica (it stays dead).
    func kill(_ id: ReplicaID) {
        processes.first { $0.id == id }?.commands.yield(.kill)
    }

    /// kill -9 every replica and wait until all have exited (a power cut).
    func killAll() async {
        for process in processes { process.commands.yield(.kill) }
        for process in processes { await process.task.value }
    }

    /// Sends SIGTERM to every replica and waits for all to exit.
    func stop() async {
        for process in processes { process.commands.yield(.terminate) }
        for process in processes { await process.task.value }
    }

    /// Finds `count` consecutive free TCP ports on 127.0.0.1.
    static func freePorts(count: Int) async throws -> Int {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            // Below Linux's default ephemeral range (32768-60999), from which outgoing connections take their
            // source ports: a replica killed and restarted (the durable demo) must find its port still free.
            let base = Int.random(in: 20_000...(32_767 - count), using: &generator)
            if await (0..<count).asyncAllSatisfy({ await isFree(base + $0) }) { return base }
        }
        throw DemoError("no free port range found on 127.0.0.1")
    }

    private static func isFree(_ port: Int) async -> Bool {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
            try await channel.close()
            return true
        } catch {
            return false
        }
    }
}

/// Waits until every replica answers a status query and is linked to all the others; with `tolerating` > 0,
/// after `grace` seconds, it settles for all but at most that many, linked to one another (a cluster serves
/// with up to f replicas down).
/// - Returns: the seconds it took and the replicas that did not answer (empty when all are up).
func waitUntilReady(_ client: ThemisClient, replicas: [ReplicaID], seconds: Double = 20, tolerating: Int = 0,
                    grace: Double = 5) async throws -> (seconds: Double, down: [ReplicaID]) {
    let start = monotonicNanoseconds()
    while true {
        // Ready means: answering, and linked to the others (messages sent before a link is up are lost).
        let reports = await queryAll(client, replicas: replicas, timeoutMilliseconds: 500)
        let answering = reports.compactMap { $0 }
        let down = zip(replicas, reports).filter { $0.1 == nil }.map(\.0)
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        if down.isEmpty, answering.allSatisfy({ Int($0.connectedReplicas) == replicas.count - 1 }) { return (elapsed, []) }
        if tolerating > 0, elapsed >= min(grace, seconds), down.count <= tolerating,
            answering.allSatisfy({ Int($0.connectedReplicas) >= answering.count - 1 }) { return (elapsed, down) }
        if elapsed > seconds {
            let names = down.map { String($0.rawValue) }.joined(separator: ", ")
            if down.isEmpty { throw DemoError("the replicas did not link to one another within \(seconds) s (see their logs)") }
            if tolerating == 0 { throw DemoError("replica \(names) did not come up within \(seconds) s (see its log in the cluster directory)") }
            throw DemoError("\(down.count) of \(replicas.count) replicas did not answer within \(seconds) s (\(names)); "
                + "at most \(tolerating) may be down")
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Sequence {
    func asyncAllSatisfy(_ predicate: (Element) async -> Bool) async -> Bool {
        for element in self where !(await predicate(element)) { return false }
        return true
    }
}
