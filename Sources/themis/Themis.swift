import ArgumentParser
import ThemisReplicaCommand

/// The `themis` command-line tool: key generation, replicas, a key-value client, the demo, the simulator and the benchmark.
@main
struct Themis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "themis",
        abstract: "Themis: Byzantine-fault-tolerant state-machine replication (PBFT).",
        subcommands: [DemoCommand.self, KeygenCommand.self, ReplicaSubcommand.self, KVCommand.self, LedgerCommand.self, StatusCommand.self, SimulateCommand.self, BenchCommand.self, BoundsCommand.self, CounterProbeCommand.self, TrustedCounterSubcommand.self],
        defaultSubcommand: DemoCommand.self
    )
}
