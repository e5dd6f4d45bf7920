import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ThemisHybsterSimulation
import ThemisPBFTSimulation
import ThemisCrypto
import ThemisHybster
import ThemisPBFT
import ThemisSimulator

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic simulator: seeded faults, Byzantine replicas, safety and liveness checkers.")

    @Option(help: "Run this one seed and print its summary.") var seed: UInt64?
    @Option(help: "Run this many seeds.") var seeds: Int?
    @Option(help: "First seed of --seeds.") var from: UInt64 = 1
    @Option(help: "Protocol: pbft (n = 4, 7, 10) or hybster (n = 3, 5, 7, with 1, 2 or 4 pillars).") var `protocol` = "pbft"
    @Flag(help: "With --seed: print view-change events, rejected VIEW-CHANGE/NEW-VIEW messages and every replica's final state.") var debug = false

    func run() async throws {
        switch `protocol` {
        case "pbft": try run(PBFT.self)
        case "hybster": try run(Hybster.self)
        default: throw ValidationError("--protocol \(`protocol`): the simulator runs pbft and hybster")
        }
    }

    func run<Plugin: SimulationPlugin>(_ plugin: Plugin.Type) throws {
        let reproduce = Plugin.name == "pbft" ? "" : " --protocol \(Plugin.name)"
        if let seed {
            let result = Simulation<Plugin>.run(seed: seed, debugEnabled: debug)
            print(result.summary)
            if !result.passed {
                print("reproduce with: \(result.reproduction)\(reproduce)")
                throw ExitCode.failure
            }
            return
        }
        let count = seeds ?? 100
        let start = monotonicNanoseconds()
        var failures = 0
        for offset in 0..<count {
            let result = Simulation<Plugin>.run(seed: from + UInt64(offset))
            if !result.passed {
                failures += 1
                print(result.summary)
                print("reproduce with: \(result.reproduction)\(reproduce)")
            }
            if (offset + 1) % 100 == 0 || offset + 1 == count {
                let seconds = Double(monotonicNanoseconds() - start) / 1e9
                print("\(offset + 1)/\(count) seeds, \(failures) failed, \(formatted(Double(offset + 1) / seconds, decimals: 1)) seeds/s")
                fflush(nil)  // progress shows up even when standard output is a file
            }
        }
        if failures > 0 { throw ExitCode.failure }
    }
}
