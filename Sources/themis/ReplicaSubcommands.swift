import ArgumentParser
import ThemisReplicaCommand

/// `themis replica`: the arguments go unparsed to `CommandRunner.replica`, as in `themis-replica`, so both
/// binaries accept the same flags and report refusals and failures alike.
struct ReplicaSubcommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica", abstract: ReplicaCommand.abstract,
        discussion: "Options (themis replica --help lists them): --config <config> --id <id> and more.")

    @Argument(parsing: .captureForPassthrough, help: "The replica's options.") var arguments: [String] = []

    func run() async throws {
        let status = await CommandRunner.replica(arguments: arguments, command: "themis replica")
        if status != 0 { throw ExitCode(status) }
    }
}

/// `themis trusted-counter`, run by `CommandRunner.trustedCounter` as in `themis-replica`.
struct TrustedCounterSubcommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "trusted-counter", abstract: TrustedCounterCommand.abstract)

    @Argument(parsing: .captureForPassthrough, help: "The subsystems' options.") var arguments: [String] = []

    func run() throws {
        let status = CommandRunner.trustedCounter(arguments: arguments, command: "themis trusted-counter")
        if status != 0 { throw ExitCode(status) }
    }
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
