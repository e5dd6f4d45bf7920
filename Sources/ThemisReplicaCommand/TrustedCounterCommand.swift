import ArgumentParser
import ThemisCore
import ThemisCrypto

/// `themis trusted-counter`: a replica's trusted subsystems in their own process (`themis replica
/// --trusted-counter process` starts it). It holds the subsystems' key and the counter files, and certifies
/// over a Unix socket (`TrustedCounterServer`).
public struct TrustedCounterCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "trusted-counter", abstract: "Serve a replica's trusted subsystems (software TrInX) on a Unix socket.")

    @Option(help: "The Unix socket to listen on.") var socket: String
    @Option(help: "The trusted subsystems' key file.") var trustedKey: String
    @Option(help: "Counter files: <path>.<pillar>.") var counterFile: String
    @Option(help: "The replica these subsystems belong to.") var replica: UInt32
    @Option(help: "Pillars (one subsystem each).") var pillars: UInt32 = 1

    public init() {}

    public func run() throws {
        do {
            let key = try TrustedSubsystemKeyFile.load(path: trustedKey)
            var subsystems: [SoftwareTrustedCounter] = []
            for pillar in 0..<pillars {
                subsystems.append(try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(replica), pillar: pillar), key: key,
                                                             store: try FileCounterStore(path: "\(counterFile).\(pillar)")))
            }
            try TrustedCounterServer.serve(path: socket, subsystems: subsystems)
        } catch let error as any CustomStringConvertible {
            throw ValidationError("\(error)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Starts this executable again as `themis trusted-counter ...` (a child that dies with the replica's
/// process group is not guaranteed: it exits when its socket's peer is gone and it is killed with the group).
func spawnTrustedCounter(_ arguments: [String]) throws {
    let executable = "/proc/self/exe"
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    let result = posix_spawn(&pid, executable, nil, nil, argv, environ)
    guard result == 0 else { throw ValidationError("cannot start the trusted-counter process: error \(result)") }
}
