import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ThemisPBFTSimulation
import ThemisSimulator

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic simulator: seeded faults, Byzantine replicas, safety and liveness checkers.")

    @Option(help: "Run this one seed and print its summary.") var seed: UInt64?
    @Option(help: "Run this many seeds.") var seeds: Int?
    @Option(help: "First seed of --seeds.") var from: UInt64 = 1
    @Option(help: "Protocol: the simulator's Byzantine replicas and checks are PBFT's so far (pbft).") var `protocol` = "pbft"
    @Flag(help: "With --seed: print view-change events, rejected VIEW-CHANGE/NEW-VIEW messages and every replica's final state.") var debug = false

    func run() async throws {
        guard `protocol` == "pbft" else {
            throw ValidationError("--protocol \(`protocol`): the simulator runs pbft only so far (its Byzantine replicas tamper with PBFT's messages)")
        }
        if let seed {
            let result = PBFTSimulation.run(seed: seed, debugEnabled: debug)
            print(result.summary)
            if !result.passed {
                print("reproduce with: \(result.reproduction)")
                throw ExitCode.failure
            }
            return
        }
        let count = seeds ?? 100
        let start = monotonicNanoseconds()
        var failures = 0
        for offset in 0..<count {
            let result = PBFTSimulation.run(seed: from + UInt64(offset))
            if !result.passed {
                failures += 1
                print(result.summary)
                print("reproduce with: \(result.reproduction)")
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
