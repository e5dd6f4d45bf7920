import ArgumentParser
import ThemisReplicaCommand

/// `themis replica`: the arguments go unparsed to `ReplicaCommand` (the parser `themis-replica` uses too), so
/// both binaries accept exactly the same flags.
struct ReplicaSubcommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica", abstract: ReplicaCommand.abstract,
        discussion: "Options (themis replica --help lists them): --config <config> --id <id> and more.")

    @Argument(parsing: .captureForPassthrough, help: "The replica's options.") var arguments: [String] = []

    func run() async throws {
        let replica: ReplicaCommand
        do {
            replica = try ReplicaCommand(arguments: arguments)
        } catch .helpRequested {
            print(ReplicaCommand.help(command: "themis replica"))
            return
        } catch {
            throw refused(error, command: "themis replica")
        }
        try await reportingErrors { try await replica.run() }
    }
}

/// `themis trusted-counter`, parsed by `TrustedCounterCommand` as in `themis-replica`.
struct TrustedCounterSubcommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "trusted-counter", abstract: TrustedCounterCommand.abstract)

    @Argument(parsing: .captureForPassthrough, help: "The subsystems' options.") var arguments: [String] = []

    func run() throws {
        let counter: TrustedCounterCommand
        do {
            counter = try TrustedCounterCommand(arguments: arguments)
        } catch .helpRequested {
            print(TrustedCounterCommand.help(command: "themis trusted-counter"))
            return
        } catch {
            throw refused(error, command: "themis trusted-counter")
        }
        do {
            try counter.run()
        } catch {
            printError("themis: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Refused arguments as `themis-replica` reports them (`CommandRunner`): an error line and a pointer to the
/// command's help on standard error, exit status 64.
private func refused(_ error: CommandLineError, command: String) -> ExitCode {
    printError("\(command): error: \(error)\nSee '\(command) --help'.")
    return ExitCode(64)
}

/// Runs `body`; on an error prints `themis: <error>` as one line and exits with status 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("themis: \(error)")
        throw ExitCode.failure
    }
}
