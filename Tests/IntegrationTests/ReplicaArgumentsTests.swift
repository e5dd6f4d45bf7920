// The replica's flags are parsed by `ReplicaCommand` (no ArgumentParser, so `themis-replica` links none):
// every flag is read, `--name=value` works, bad input is a typed error, and both binaries give the same help
// and the same refusals (exit status 64: a line naming the problem, then a pointer to --help).
import Foundation
import Testing
@testable import ThemisReplicaCommand

extension IntegrationSuite {
@Suite("Replica arguments")
struct ReplicaArgumentsTests {
    @Test("Every option and flag is parsed; defaults hold for the rest; --name=value equals --name value")
    func parsesEverything() throws {
        let all = try ReplicaCommand(arguments: [
            "--config", "/c/cluster.json", "--id", "3", "--key", "k", "--app", "bench", "--reply-size", "100",
            "--log-level=debug", "--http-port", "0", "--http-host", "0.0.0.0", "--threads", "2", "--trusted-key", "t",
            "--trusted-counter", "process", "--data-dir", "d", "--recover-from-peers", "--tls-identity", "p",
            "--counter-file", "c", "--app-socket", "s",
        ])
        #expect(all.config == "/c/cluster.json" && all.id == 3 && all.key == "k" && all.app == "bench" && all.replySize == 100)
        #expect(all.logLevel == "debug" && all.httpPort == 0 && all.httpHost == "0.0.0.0" && all.threads == 2)
        #expect(all.trustedKey == "t" && all.trustedCounter == "process" && all.dataDir == "d" && all.recoverFromPeers)
        #expect(!all.firstStart && all.tlsIdentity == "p" && all.counterFile == "c" && all.appSocket == "s" && all.appCommand == nil)
        let few = try ReplicaCommand(arguments: ["--id=0", "--config=x.json", "--first-start", "--app-command", "python3 app.py --flag"])
        #expect(few.id == 0 && few.config == "x.json" && few.firstStart && few.appCommand == "python3 app.py --flag")
        #expect(few.app == "kv" && few.replySize == 10 && few.logLevel == "info" && few.trustedCounter == "in-process")
        #expect(few.httpPort == nil && few.threads == nil && few.dataDir == nil && !few.recoverFromPeers)
        // A value that starts with "-" is given as --name=value.
        #expect(try ReplicaCommand(arguments: ["--config", "c", "--id", "1", "--data-dir=-d"]).dataDir == "-d")
        // The last occurrence wins.
        #expect(try ReplicaCommand(arguments: ["--config", "a", "--id", "1", "--id", "2"]).id == 2)
    }

    @Test("Bad arguments are typed errors", arguments: [
        (["--id", "1"], CommandLineError.missingOption(option: "config")),
        (["--config", "c"], .missingOption(option: "id")),
        (["--config", "c", "--id=-1"], .invalidValue(option: "id", value: "-1", expected: "an integer in 0...4294967295")),
        (["--config", "c", "--id", "1", "--threads", "two"], .invalidValue(option: "threads", value: "two", expected: "an integer in \(Int.min)...\(Int.max)")),
        (["--config", "c", "--id", "1", "--colour", "red"], .unknownOption("--colour")),
        (["--config", "c", "--id"], .missingValue(option: "id")),
        (["--config", "c", "--id", "1", "--data-dir", "--first-start"], .missingValue(option: "data-dir")),
        (["--config", "c", "--id", "1", "--http-port", "-1"], .missingValue(option: "http-port")),
        (["--config", "c", "--id", "1", "extra"], .unexpectedArgument("extra")),
        (["--config", "c", "--id", "1", "--first-start=yes"], .invalidValue(option: "first-start", value: "yes", expected: "no value (a flag)")),
        (["--config", "c", "-h"], .helpRequested),
    ])
    func refuses(arguments: [String], error: CommandLineError) {
        #expect(throws: error) { try ReplicaCommand(arguments: arguments) }
    }

    @Test("The trusted-counter command's arguments")
    func trustedCounterArguments() throws {
        let counter = try TrustedCounterCommand(arguments: ["--socket", "s", "--trusted-key", "k", "--counter-file", "c", "--replica", "2"])
        #expect(counter.socket == "s" && counter.trustedKey == "k" && counter.counterFile == "c" && counter.replica == 2 && counter.pillars == 1)
        #expect(throws: CommandLineError.missingOption(option: "socket")) { try TrustedCounterCommand(arguments: ["--replica", "2"]) }
    }

    @Test("The help lists every option, wrapped to 80 columns")
    func help() {
        let help = ReplicaCommand.help(command: "themis-replica")
        for option in ReplicaCommand.options { #expect(help.contains("--\(option.name)"), "\(option.name)") }
        #expect(help.split(separator: "\n").allSatisfy { $0.count <= 80 }, "\(help)")
    }

    @Test("themis replica and themis-replica: --help (status 0) and refused arguments (status 64, an error line and a pointer to --help) alike")
    func binaries() throws {
        let themisBinary = try ReplicaProcesses.themisBinary()
        var binaries: [(path: String, prefix: [String], name: String)] = [(themisBinary, ["replica"], "themis replica")]
        let slim = URL(fileURLWithPath: themisBinary).deletingLastPathComponent().appendingPathComponent("themis-replica").path
        // `swift test` builds every product, so the smaller binary must be there too (not skipped if missing).
        #expect(FileManager.default.isExecutableFile(atPath: slim), "themis-replica is not next to \(themisBinary)")
        binaries.append((slim, [], "themis-replica"))
        for binary in binaries {
            let (helpStatus, helpOut, _) = try runToExit(binary.path, binary.prefix + ["--help"])
            #expect(helpStatus == 0, "\(binary.name)")
            #expect(helpOut.contains("--data-dir <data-dir>") && helpOut.contains("USAGE: \(binary.name) --config"), "\(helpOut)")
            let (status, _, error) = try runToExit(binary.path, binary.prefix + ["--id", "1"])
            #expect(status == 64, "\(binary.name): \(error)")
            #expect(error == "\(binary.name): error: missing expected option '--config'\nSee '\(binary.name) --help'.\n", "\(binary.name): \(error)")
            let (unknown, _, unknownError) = try runToExit(binary.path, binary.prefix + ["--config", "c", "--id", "1", "--colour", "red"])
            #expect(unknown == 64 && unknownError.contains("unknown option '--colour'"), "\(binary.name): \(unknownError)")
            // Past parsing, an error while starting is one line with status 1.
            let (missing, _, missingError) = try runToExit(binary.path, binary.prefix + ["--config", "/nonexistent/cluster.json", "--id", "1"])
            #expect(missing == 1 && missingError.hasPrefix("themis: ") && missingError.contains("/nonexistent/cluster.json"), "\(binary.name): \(missingError)")
        }
    }
}
}
