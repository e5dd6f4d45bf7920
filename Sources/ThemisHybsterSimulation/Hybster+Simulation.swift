import ThemisCore
import ThemisCrypto
import ThemisHybster
import ThemisProtocolKit
import ThemisSimulator
import ThemisWire

/// The seeded simulator running Hybster: `HybsterSimulation.run(seed:)` (n = 3, 5, 7; P = 1, 2, 4).
public typealias HybsterSimulation = Simulation<Hybster>

/// What Hybster's adversary remembers across a run.
public struct HybsterAdversaryState {
    /// The exhausting replica's flood: which kind comes next.
    var floodRound = 0
}

extension Hybster: SimulationPlugin {
    public static func makeAdversaryState() -> HybsterAdversaryState { HybsterAdversaryState() }

    /// `faulty` has no meaning for Hybster's core (its self-test is the faulty counter,
    /// `Scenario.faultyCounter`); the subsystems come from the world's stores.
    public static func makeCore(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                                faulty: Bool, environment: CoreEnvironment) -> HybsterReplica {
        do {
            return try makeCore(id: id, configuration: configuration, settings: settings, limits: limits, environment: environment)
        } catch {
            preconditionFailure("the simulator's software counters over memory cannot fail to open: \(error)")
        }
    }

    /// A restarted replica cannot contradict itself once it takes part again: its counters (kept across the
    /// restart) were ahead of its state, so it certified nothing until a NEW-VIEW brought it into a view above
    /// them, and acknowledging that NEW-VIEW made it answer for every re-proposal; counters at 0 mean it never
    /// certified anything. And it holds the batches of its log again: a replica that took part but still
    /// lacked batches, counted as recovered, let the next restart take the last holder of a batch (seed 352,
    /// n = 3, no stable checkpoint yet: nobody could fetch order 11 any more). Until then it is charged to f.
    public static func hasRecovered(_ core: HybsterReplica) -> Bool { core.hasCaughtUp }

    public static func retainedBytes(of core: HybsterReplica) -> ByteParts { core.retainedBytes }

    public static func debugDescription(of core: HybsterReplica) -> String { core.debugDescription }

    public static func sendByzantine(_ world: World<Hybster>, _ message: HybsterMessage, from index: Int, to targets: [ReplicaID], broadcast: Bool) {
        world.sendByzantine(message, from: index, to: targets)
    }

    public static func exhaust(_ world: World<Hybster>, from index: Int) {
        world.exhaust(from: index)
    }

    public static func measure(_ world: World<Hybster>, _ message: HybsterMessage, bytes: Int) {
        guard case .viewChange(let viewChange) = message else { return }
        world.stats.viewChangeBytesMax = max(world.stats.viewChangeBytesMax, bytes)
        world.stats.viewChangePreparedMax = max(world.stats.viewChangePreparedMax, viewChange.entries.count)
    }
}
