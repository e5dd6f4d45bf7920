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
