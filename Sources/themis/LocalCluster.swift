import NIOCore
import NIOPosix
import Subprocess
import SystemPackage
import ThemisCore

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

    /// Starts `count` replicas of the cluster in `directory` (which holds cluster.json and the keys).
    init(directory: String, count: Int, app: String) throws {
        self.directory = directory
        var processes: [Process] = []
        for index in 0..<count {
            let id = ReplicaID(UInt32(index))
            let log = try FileDescriptor.open(
                FilePath("\(directory)/replica-\(index).log"), .writeOnly,
                options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead])
            let (stream, continuation) = AsyncStream.makeStream(of: Command.self)
            let arguments = ["replica", "--config", "\(directory)/cluster.json", "--id", "\(index)", "--app", app]
            let task = Task {
                _ = try? await run(
                    .path("/proc/self/exe"), arguments: Arguments(arguments),
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

    /// kill -9 one replica (it stays dead).
    func kill(_ id: ReplicaID) {
        processes.first { $0.id == id }?.commands.yield(.kill)
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
            let base = Int.random(in: 20_000...60_000, using: &generator)
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
