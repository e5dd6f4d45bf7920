// The PBFT protocol core alone: a 4-replica cluster of PBFTReplica values in memory, no network, no
// crypto, no codec. One iteration orders, commits and executes one batch of 10 requests at every replica.
import Benchmark
import ThemisCore
import ThemisPBFT

/// Drives four cores the way the replica shell (ProtocolDriver) does: one reused action buffer per
/// replica, `flush` after each group of inputs, outgoing messages queued FIFO and delivered in order,
/// executions handed back with `executed(...)` after the message that triggered them.
struct InMemoryCluster {
    private struct Envelope {
        var to: Int
        var message: PBFTMessage
    }

    static let batchSize = 10

    private(set) var replicas: [PBFTReplica]
    private var actionBuffers: [[PBFTAction]]
    private var network: [Envelope] = []
    private var networkHead = 0
    private var executions: [(replica: Int, batch: ExecutionBatch)] = []
    private var executionHead = 0
    /// A stand-in authenticator per replica (the core only stores it, for certificates).
    private let authenticators: [[UInt8]]
    /// A tiny application: a counter per replica, snapshot = its 8 bytes.
    private var counters: [UInt64]
    private(set) var replies = 0
    private(set) var rejections = 0
    /// CHECKPOINTs that arrive after 2f+1 others made the checkpoint stable: the core rejects them
    /// (`.staleCheckpoint`), which is expected (the last of the 3 peers' messages, at every replica).
    private(set) var lateCheckpoints = 0
    /// The first rejections seen, for the check after the run.
    private(set) var rejectionSamples: [String] = []
    private(set) var committedBatches = 0

    init(settings: ProtocolSettings) throws {
        let configuration = try ClusterConfiguration(replicaCount: 4)
        let limits = Limits(batchRequestsMax: Self.batchSize)
        replicas = configuration.replicas.map { PBFTReplica(id: $0, configuration: configuration, settings: settings, limits: limits) }
        actionBuffers = Array(repeating: [], count: 4)
        authenticators = (0..<4).map { [0xA0, UInt8($0)] }
        counters = Array(repeating: 0, count: 4)
        network.reserveCapacity(256)
        executions.reserveCapacity(8)
    }

    /// Submits one batch of requests at the primary and runs the cluster until nothing is in flight.
    mutating func commit(_ batch: [Request]) {
        let primary = Int(replicas[0].primary.rawValue)
        step(primary) { (core, actions) throws(Rejection) in
            for request in batch {
                try core.submit(Verified(checked: request), into: &actions)
            }
        }
        run()
        committedBatches += 1
    }

    private mutating func run() {
        while true {
            if networkHead < network.count {
                let envelope = network[networkHead]
                networkHead += 1
                let authenticator = authenticators[Int(envelope.message.sender.rawValue)]
                step(envelope.to) { (core, actions) throws(Rejection) in
                    try core.receive(Verified(checked: envelope.message, authenticator: authenticator), into: &actions)
                }
            } else if executionHead < executions.count {
                let (replica, batch) = executions[executionHead]
                executionHead += 1
                counters[replica] &+= UInt64(batch.requests.count)
                let count = counters[replica]
                let snapshot: [UInt8]? = batch.checkpoint ? (0..<8).map { UInt8(truncatingIfNeeded: count >> ($0 * 8)) } : nil
                step(replica) { core, actions in
                    core.executed(batch.sequence, results: batch.requests.map(\.operation), applicationSnapshot: snapshot, into: &actions)
                }
            } else {
                network.removeAll(keepingCapacity: true)
                networkHead = 0
                executions.removeAll(keepingCapacity: true)
                executionHead = 0
                return
            }
        }
    }

    private mutating func step(
        _ replica: Int, _ body: (inout PBFTReplica, inout [PBFTAction]) throws(Rejection) -> Void
    ) {
        actionBuffers[replica].removeAll(keepingCapacity: true)
        do {
            try body(&replicas[replica], &actionBuffers[replica])
        } catch .staleCheckpoint {
            lateCheckpoints += 1
        } catch {
            rejections += 1
            if rejectionSamples.count < 5 { rejectionSamples.append("replica \(replica) at batch \(committedBatches): \(error)") }
        }
        replicas[replica].flush(into: &actionBuffers[replica])
        for action in actionBuffers[replica] {
            switch action {
            case .send(let message, let to):
                network.append(Envelope(to: Int(to.rawValue), message: message))
            case .broadcast(let message):
                for other in 0..<replicas.count where other != replica {
                    network.append(Envelope(to: other, message: message))
                }
            case .reply:
                replies += 1
            case .execute(let batch):
                executions.append((replica, batch))
            case .installState, .observe, .stageCheckpoint, .persist, .persistCheckpoint:
                break
            }
        }
    }
}

/// The cluster and the requests it will order, prepared before measuring (building a request computes
/// its SHA-256 digest, which is the codec's job, not the core's).
final class ProtocolFixture {
    let settings: ProtocolSettings
    let batches: Int
    var cluster: InMemoryCluster?
    var requests: [[Request]] = []
    var next = 0

    init(settings: ProtocolSettings, batches: Int) {
        self.settings = settings
        self.batches = batches
    }

    func prepare() throws {
        cluster = try InMemoryCluster(settings: settings)
        let operation = [UInt8](repeating: 0x5A, count: 100)
        requests = (0..<batches).map { batch in
            (0..<InMemoryCluster.batchSize).map { client in
                Request(client: ClientID(UInt32(client)), timestamp: Timestamp(UInt64(batch) + 1), operation: operation)
            }
        }
        next = 0
    }

    /// Fails loudly (also in release builds) unless every batch was executed everywhere, without a rejection.
    func check() {
        guard let cluster else { return }
        let expected = SequenceNumber(UInt64(cluster.committedBatches))
        var problems: [String] = []
        if cluster.rejections != 0 { problems.append("\(cluster.rejections) messages rejected, first: \(cluster.rejectionSamples)") }
        if !cluster.replicas.allSatisfy({ $0.lastExecuted == expected }) {
            problems.append("executed \(cluster.replicas.map(\.lastExecuted)), expected \(expected)")
        }
        if cluster.replies != cluster.committedBatches * InMemoryCluster.batchSize * 4 { problems.append("\(cluster.replies) replies") }
        if !problems.isEmpty { fatalError("protocol benchmark: \(problems.joined(separator: "; "))") }
    }
}

func registerProtocolBenchmarks() {
    let maxIterations = 20_000
    let warmup = 3
    // Default settings (checkpoint every 1000 batches, window 2000): a run of up to 20 000 batches takes
    // about 20 checkpoints, which are part of the per-batch cost.
    let fixture = ProtocolFixture(settings: ProtocolSettings(), batches: maxIterations + warmup + 10)
    var config = configuration(scaling: .one, seconds: 5, maxIterations: maxIterations)
    config.warmupIterations = warmup
    Benchmark("Protocol PBFT 4 replicas: commit one batch of 10 requests", configuration: config, closure: { benchmark in
        guard fixture.next < fixture.requests.count else { fatalError("more iterations than prepared batches") }
        let batch = fixture.requests[fixture.next]
        fixture.next += 1
        benchmark.startMeasurement()
        fixture.cluster!.commit(batch)
        benchmark.stopMeasurement()
    }, setup: {
        try fixture.prepare()
    }, teardown: {
        fixture.check()
        if let cluster = fixture.cluster {
            print("protocol benchmark: \(cluster.committedBatches) batches committed and executed at all 4 replicas, "
                + "\(cluster.replies) replies, \(cluster.lateCheckpoints) late CHECKPOINTs rejected as stale")
        }
    })
}
