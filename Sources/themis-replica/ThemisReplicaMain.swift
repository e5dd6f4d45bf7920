import ArgumentParser
import Dispatch
import ThemisReplicaCommand

/// The replica alone, in a binary without the simulator, benchmark, client and demo code: a smaller
/// resident set than `themis replica` (same flags). Local clusters started by `themis demo` and
/// `themis bench --local` use it when it sits next to the `themis` binary.
///
/// A synchronous main that waits for the command on a semaphore, not `async main`: an async main ends the
/// main thread in `dispatch_main`, whose `pthread_exit` unwinds it, and in this statically linked binary the
/// first unwind reads and sorts the whole `.eh_frame` section (2.8 MiB of resident memory, measured).
@main
struct ThemisReplicaMain {
    static func main() {
        // A replica with --trusted-counter process starts this binary again as its trusted subsystem.
        if CommandLine.arguments.dropFirst().first == "trusted-counter" {
            TrustedCounterCommand.main(Array(CommandLine.arguments.dropFirst(2)))
        }
        // Detached: main is MainActor-isolated, and the main thread stays blocked below.
        let finished = DispatchSemaphore(value: 0)
        Task.detached {
            await ReplicaCommand.main()
            finished.signal()
        }
        finished.wait()
    }
}
