import Dispatch
import Synchronization
import ThemisReplicaCommand

#if canImport(Glibc)
import Glibc
#endif

/// The replica alone, in a binary without the simulator, benchmark, client and demo code, and without
/// ArgumentParser (its flags are parsed by `ReplicaCommand`, the same code behind `themis replica`): a smaller
/// resident set than `themis replica` (same flags). Local clusters started by `themis demo` and
/// `themis bench --local` use it when it sits next to the `themis` binary.
///
/// A synchronous main that waits for the command on a semaphore, not `async main`: an async main ends the
/// main thread in `dispatch_main`, whose `pthread_exit` unwinds it, and in this statically linked binary the
/// first unwind reads and sorts the whole `.eh_frame` section (2.8 MiB of resident memory, measured).
@main
struct ThemisReplicaMain {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // A replica with --trusted-counter process starts this binary again as its trusted subsystem.
        if arguments.first == "trusted-counter" {
            exit(CommandRunner.trustedCounter(arguments: Array(arguments.dropFirst()), command: "themis-replica trusted-counter"))
        }
        // Detached: main is MainActor-isolated, and the main thread stays blocked below.
        let finished = DispatchSemaphore(value: 0)
        let status = Atomic<Int32>(0)
        Task.detached {
            status.store(await CommandRunner.replica(arguments: arguments, command: "themis-replica"), ordering: .relaxed)
            finished.signal()
        }
        finished.wait()
        exit(status.load(ordering: .relaxed))
    }
}
