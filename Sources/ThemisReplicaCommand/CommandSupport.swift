// Helpers shared by the `themis` and `themis-replica` command-line tools.
import Dispatch
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Prints one line to standard error.
public func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

public struct StandardError: TextOutputStream {
    public init() {}

    public mutating func write(_ string: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array(string.utf8))
    }
}

/// An error of a replica command that needs no more than its message (printed as one line).
public struct CommandError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// How `themis-replica` runs its commands (`themis` wraps the same ones in ArgumentParser commands): `--help`
/// prints the help to standard output (status 0); refused arguments print `<command>: error: <reason>` and a
/// pointer to `--help` (status 64, as ArgumentParser's usage errors); an error while running prints
/// `themis: <error>` as one line (status 1).
public enum CommandRunner {
    /// `replica`, with the arguments after the command's name; returns the exit status.
    public static func replica(arguments: [String], command: String) async -> Int32 {
        let replica: ReplicaCommand
        do {
            replica = try ReplicaCommand(arguments: arguments)
        } catch {
            return refused(error, command: command, help: ReplicaCommand.help(command: command))
        }
        do {
            try await replica.run()
            return 0
        } catch {
            printError("themis: \(error)")
            return 1
        }
    }

    /// `trusted-counter`, with the arguments after the command's name; returns the exit status.
    public static func trustedCounter(arguments: [String], command: String) -> Int32 {
        let counter: TrustedCounterCommand
        do {
            counter = try TrustedCounterCommand(arguments: arguments)
        } catch {
            return refused(error, command: command, help: TrustedCounterCommand.help(command: command))
        }
        do {
            try counter.run()
            return 0
        } catch {
            printError("themis: \(error)")
            return 1
        }
    }

    private static func refused(_ error: CommandLineError, command: String, help: String) -> Int32 {
        if error == .helpRequested {
            print(help)
            return 0
        }
        printError("\(command): error: \(error)\nSee '\(command) --help'.")
        return 64
    }
}

/// The directory part of a path ("." if none).
public func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let prefix = String(path[..<slash])
    return prefix.isEmpty ? "/" : prefix
}

/// Waits until SIGTERM or SIGINT arrives. The caller then drains; a second signal ends the process at once
/// (the default action is restored).
public func waitForTerminationSignal() async {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
    let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    for await _ in stream { break }
    for source in sources { source.cancel() }
    signal(SIGTERM, SIG_DFL)
    signal(SIGINT, SIG_DFL)
}
