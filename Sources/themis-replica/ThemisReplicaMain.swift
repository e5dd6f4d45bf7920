import ArgumentParser
import ThemisReplicaCommand

/// The replica alone, in a binary without the simulator, benchmark, client and demo code: a smaller
/// resident set than `themis replica` (same flags). Local clusters started by `themis demo` and
/// `themis bench --local` use it when it sits next to the `themis` binary.
@main
struct ThemisReplicaMain {
    static func main() async {
        // A replica with --trusted-counter process starts this binary again as its trusted subsystem.
        if CommandLine.arguments.dropFirst().first == "trusted-counter" {
            TrustedCounterCommand.main(Array(CommandLine.arguments.dropFirst(2)))
        }
        await ReplicaCommand.main()
    }
}
