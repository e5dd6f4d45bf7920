import ArgumentParser
import ThemisReplicaCommand

/// The `themis` command-line tool: key generation, replicas, a key-value client, the demo, the simulator and the benchmark.
@main
struct Themis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "themis",
        abstract: "Themis: Byzantine-fault-tolerant state-machine replication (PBFT).",
        subcommands: [DemoCommand.self, KeygenCommand.self, ReplicaCommand.self, KVCommand.self, LedgerCommand.self, StatusCommand.self, SimulateCommand.self, BenchCommand.self, BoundsCommand.self, CounterProbeCommand.self, TrustedCounterCommand.self],
        defaultSubcommand: DemoCommand.self
    )
}
