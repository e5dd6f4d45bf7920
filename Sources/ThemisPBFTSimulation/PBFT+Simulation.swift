import ThemisCore
import ThemisCrypto
import ThemisPBFT
import ThemisSimulator

/// The seeded simulator running PBFT: `PBFTSimulation.run(seed:)`.
public typealias PBFTSimulation = Simulation<PBFT>

/// What PBFT's adversary remembers across a run.
public struct PBFTAdversaryState {
    /// Colluding replicas share what they equivocate on: sequence number → (original, variant).
    var collusion: [SequenceNumber: (PrePrepare, PrePrepare)] = [:]
    /// The exhausting replica's flood: which kind comes next, and its batch (made once).
    var floodRound = 0
    var floodBatch: [Request]?
}

extension PBFT: SimulationPlugin {
    public static func makeAdversaryState() -> PBFTAdversaryState { PBFTAdversaryState() }

    public static func makeCore(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                                faulty: Bool, environment: CoreEnvironment) -> PBFTReplica {
        var core = PBFTReplica(id: id, configuration: configuration, settings: settings, limits: limits)
        core.testingIgnoreDigestsInQuorums = faulty
        core.recoveryNonce = environment.incarnation
        return core
    }

    public static func hasRecovered(_ core: PBFTReplica) -> Bool { core.recoveredByEstimate }

    public static func markFirstStart(_ core: inout PBFTReplica) { core.knownFirstStart = true }

    public static func retainedBytes(of core: PBFTReplica) -> ByteParts {
        core.retainedBytes.byteParts
    }

    public static func debugDescription(of core: PBFTReplica) -> String {
        "\(core.view) \(core.status) low \(core.lowWatermark.rawValue) scheduled \(core.lastScheduled.rawValue) "
            + "executed \(core.lastExecuted.rawValue) proposed \(core.lastProposed.rawValue) \(core.debugDescription)"
    }

    public static func sendByzantine(_ world: World<PBFT>, _ message: PBFTMessage, from index: Int, to targets: [ReplicaID], broadcast: Bool) {
        world.sendByzantine(message, from: index, to: targets, broadcast: broadcast)
    }

    public static func exhaust(_ world: World<PBFT>, from index: Int) {
        world.exhaust(from: index)
    }

    /// Statistics: the largest VIEW-CHANGE a correct replica sent, and the bytes of the batches it names.
    public static func measure(_ world: World<PBFT>, _ message: PBFTMessage, bytes: Int) {
        switch message {
        case .prePrepare(let prePrepare):
            world.batchBytes[prePrepare.digest] = prePrepare.requests.reduce(0) { $0 + 20 + $1.operation.count + $1.authenticator.count }
        case .viewChange(let viewChange):
            world.stats.viewChangeBytesMax = max(world.stats.viewChangeBytesMax, bytes)
            world.stats.viewChangePreparedMax = max(world.stats.viewChangePreparedMax, viewChange.prepared.count)
            let named = viewChange.prepared.reduce(0) { $0 + (world.batchBytes[$1.digest] ?? 0) }
            world.stats.viewChangeBatchBytesMax = max(world.stats.viewChangeBatchBytesMax, named)
        default:
            break
        }
    }
}
