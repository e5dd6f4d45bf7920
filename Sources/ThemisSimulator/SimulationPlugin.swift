import ThemisCore
import ThemisCrypto

/// What the simulator needs of a protocol beyond `ProtocolPlugin`: how to make its cores, how to read the
/// few facts the checkers use, and its adversary (what a Byzantine replica does with the messages its real
/// core sends, and the exhausting replica's flood). The world, the network, the clients, the faults, the
/// ingress, the driver and the checkers are the protocol's as they are; PBFT's conformance and adversary are
/// in ThemisPBFTSimulation.
public protocol SimulationPlugin: ProtocolPlugin {
    /// What the adversary remembers across a run (colluding replicas' shared choices, a flood's batch).
    associatedtype AdversaryState

    static func makeAdversaryState() -> AdversaryState

    /// A fresh core. `faulty`: a deliberately broken correct core (the checkers' self-test: they must catch it).
    /// `environment`: the replica's trusted subsystems, which survive its restarts (their stores are the world's).
    static func makeCore(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                         faulty: Bool, environment: CoreEnvironment) -> Core

    /// What the core holds now, part by part, to compare with `retainedBytesBound` (the memory checker).
    static func retainedBytes(of core: Core) -> ByteParts

    /// A line about a core's state for `--debug`.
    static func debugDescription(of core: Core) -> String

    /// A Byzantine replica's outgoing message: what it sends instead (through `World.enqueue`).
    static func sendByzantine(_ world: World<Self>, _ message: Core.Message, from index: Int, to targets: [ReplicaID], broadcast: Bool)

    /// The exhausting replica's flood on its ticks: every message kind at its limits, validly authenticated.
    static func exhaust(_ world: World<Self>, from index: Int)

    /// Statistics on a message a correct replica sent (`bytes`: its payload).
    static func measure(_ world: World<Self>, _ message: Core.Message, bytes: Int)

    /// True once a replica restarted empty has recovered so that it cannot contradict what it said before its
    /// restart: the simulator stops charging it to the fault budget. Default: never (it stays charged).
    static func hasRecovered(_ core: Core) -> Bool

    /// The initial replicas of a run are the cluster's first start, which the simulator knows (a process does
    /// not: it runs the recovery protocol, whose first-start rule races with the others' first batches).
    static func markFirstStart(_ core: inout Core)
}

extension SimulationPlugin {
    public static func hasRecovered(_ core: Core) -> Bool { false }
    public static func markFirstStart(_ core: inout Core) {}
}
