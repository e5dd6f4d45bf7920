import ThemisCore
import ThemisCrypto

/// `themis trusted-counter`: a replica's trusted subsystems in their own process (`themis replica
/// --trusted-counter process` starts it). It holds the subsystems' key and the counter files, and certifies
/// over a Unix socket (`TrustedCounterServer`).
public struct TrustedCounterCommand: Sendable {
    public static let abstract = "Serve a replica's trusted subsystems (software TrInX) on a Unix socket."

    public static let options: [CommandLineOption] = [
        CommandLineOption("socket", help: "The Unix socket to listen on."),
        CommandLineOption("trusted-key", help: "The trusted subsystems' key file."),
        CommandLineOption("counter-file", help: "Counter files: <path>.<pillar>."),
        CommandLineOption("replica", help: "The replica these subsystems belong to."),
        CommandLineOption("pillars", help: "Pillars (one subsystem each). (default: 1)"),
    ]

    /// The help text; `command` is how it was invoked.
    public static func help(command: String) -> String {
        commandHelp(usage: "\(command) --socket <socket> --trusted-key <trusted-key> --counter-file <counter-file> --replica <replica> [--pillars <pillars>]",
                    abstract: abstract, options: options)
    }

    var socket: String
    var trustedKey: String
    var counterFile: String
    var replica: UInt32
    var pillars: UInt32 = 1

    /// Parses the arguments after the command's name.
    public init(arguments: [String]) throws(CommandLineError) {
        let parsed = try ParsedOptions(arguments, options: Self.options)
        socket = try parsed.required("socket")
        trustedKey = try parsed.required("trusted-key")
        counterFile = try parsed.required("counter-file")
        guard let replica = try parsed.integer("replica", as: UInt32.self) else { throw .missingOption(option: "replica") }
        self.replica = replica
        pillars = try parsed.integer("pillars") ?? pillars
    }

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
            throw CommandError("\(error)")
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
    guard result == 0 else { throw CommandError("cannot start the trusted-counter process: error \(result)") }
}
