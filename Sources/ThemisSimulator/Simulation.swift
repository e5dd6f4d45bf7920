import NIOCore
import ThemisCore
import ThemisCrypto

/// The outcome of one seeded run.
public struct SimulationResult: Sendable {
    public let seed: UInt64
    public let scenario: String
    public let violation: Violation?
    public let traceHash: UInt64
    public let ticks: UInt64
    public let statistics: SimulationStatistics

    public var passed: Bool { violation == nil }

    /// The command that runs this seed again.
    public var reproduction: String { "swift run themis simulate --seed \(seed)" }

    public var summary: String {
        let outcome = violation.map { "FAILED: \($0)" } ?? "passed"
        return "seed \(seed): \(outcome); \(ticks) ticks, \(statistics.packetsDelivered) packets, "
            + "\(statistics.requestsCompleted) requests (\(statistics.readOnlyCompleted) read-only, \(statistics.readOnlyFallbacks) fell back), \(statistics.viewChanges) view entries, "
            + "\(statistics.stateTransfers) state transfers, "
            + (statistics.tentativeCommitted + statistics.tentativeUndone > 0 ? "\(statistics.tentativeCommitted) tentative batches committed, \(statistics.tentativeUndone) undone, " : "")
            + "\(statistics.crashes) crashes, \(statistics.recoveries) recoveries, \(statistics.rollingRestarts) rolling restarts of \(statistics.rollingReplicas.count) replicas, "
            + "\(statistics.rejections) rejected inputs; largest VIEW-CHANGE \(statistics.viewChangeBytesMax) B naming "
            + "\(statistics.viewChangePreparedMax) batches of \(statistics.viewChangeBatchBytesMax) B (frame \(statistics.frameBytesMax) B); core memory "
            + "\(statistics.retainedBytesMax) B of \(statistics.retainedBytesBound) B bound; trace \(String(traceHash, radix: 16))\n  \(scenario)"
    }
}

/// Runs seeded simulations of a cluster of `Plugin`'s replicas (PBFT: `PBFTSimulation` in
/// ThemisPBFTSimulation). One seed determines everything; a run is bit-for-bit reproducible (same seed, same
/// trace hash).
public enum Simulation<Plugin: SimulationPlugin> {
    /// Runs the scenario of `seed`.
    public static func run(seed: UInt64, debugEnabled: Bool = false) -> SimulationResult {
        run(Scenario(seed: seed, faultModel: Plugin.faultModel), debugEnabled: debugEnabled)
    }

    /// Runs a scenario: a safety phase with faults, then healing and a liveness phase in which every
    /// outstanding request must complete within the budget. Checkers run on every step.
    /// - Parameter debugEnabled: print each replica's final state (for investigating a failing seed).
    public static func run(_ scenario: Scenario, debugEnabled: Bool = false) -> SimulationResult {
        let world: World<Plugin>
        do {
            world = try World(scenario: scenario)
        } catch {
            return SimulationResult(seed: scenario.seed, scenario: scenario.description,
                                    violation: Violation(checker: "setup", tick: 0, detail: "\(error)"),
                                    traceHash: 0, ticks: 0, statistics: SimulationStatistics())
        }
        world.debugLog = debugEnabled
        let deadline = scenario.faultTicks + scenario.livenessBudgetTicks
        while world.now < deadline, world.checker.violation == nil {
            world.now += 1
            if world.now == scenario.faultTicks { world.heal() } else if !world.healed { world.injectFaults() }
            step(world)
            // A replica cut off by a long partition should also have caught up (it may have to wait for the
            // others' periodic messages); the run waits for it up to 2,000 ticks after the heal.
            let caughtUp = world.longPartitionVictim.map { world.replicas[$0].core.lastExecuted.rawValue >= world.longPartitionTarget } ?? true
                || world.now > scenario.faultTicks + 2_000
            if world.healed && world.outstandingOperations == 0 && world.network.isEmpty && caughtUp { break }
        }
        if debugEnabled {
            for (index, replica) in world.replicas.enumerated() {
                print("replica \(index) \(replica.behavior?.rawValue ?? "correct"): \(Plugin.debugDescription(of: replica.core))")
            }
        }
        if let victim = world.longPartitionVictim {
            world.stats.longPartitionCaughtUp = world.replicas[victim].core.lastExecuted.rawValue >= world.longPartitionTarget
        }
        if world.checker.violation == nil && world.outstandingOperations > 0 {
            world.checker.fail("liveness", world.now, "\(world.outstandingOperations) client operations did not complete "
                + "within \(scenario.livenessBudgetTicks) ticks after the faults healed")
        }
        if world.checker.violation == nil { world.checker.checkLinearizability(at: world.now) }
        let latencies = world.checker.completions.filter { $0.readOnlyOperation == nil }.map { $0.end - $0.start }.sorted()
        if !latencies.isEmpty { world.stats.orderedLatencyTicksMedian = latencies[latencies.count / 2] }
        return SimulationResult(seed: scenario.seed, scenario: scenario.description, violation: world.checker.violation,
                                traceHash: world.trace.value, ticks: world.now, statistics: world.stats)
    }

    /// One tick: deliver what is due, tick every replica and client.
    static func step(_ world: World<Plugin>) {
        if let due = world.network.removeValue(forKey: world.now) {
            for packet in due {
                world.stats.packetsDelivered += 1
                world.trace.add(packet.payload)
                switch packet.to {
                case .replica(let id): world.deliver(packet, toReplica: Int(id.rawValue))
                case .client(let id): world.deliver(packet, toClient: Int(id.rawValue))
                }
            }
        }
        for index in world.replicas.indices { world.tickReplica(index) }
        for index in world.clients.indices { world.tickClient(index) }
        if world.scenario.byzantineClient && !world.healed { world.tickByzantineClient() }
    }
}
