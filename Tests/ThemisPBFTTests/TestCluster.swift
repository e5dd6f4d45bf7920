// A deterministic in-memory harness for PBFT cores: it routes actions between replicas through a FIFO
// network (messages can be held back, dropped or injected), executes batches synchronously on a tiny
// state machine that records its history, and collects replies per client.
import ThemisCore
@testable import ThemisPBFT

struct Envelope {
    var from: ReplicaID
    var to: ReplicaID
    var message: PBFTMessage
}

struct TestCluster {
    var replicas: [PBFTReplica]
    var network: [Envelope] = []
    /// Per replica: the executed (sequence, requests) history.
    var executedHistory: [[(SequenceNumber, [Request])]]
    /// Per replica: the results of the application (operation bytes concatenated in order).
    var applicationState: [[UInt8]]
    var replies: [Reply] = []
    var rejections: [(ReplicaID, Rejection)] = []
    var events: [(ReplicaID, Event)] = []
    /// Replicas whose outgoing messages are dropped (crashed or silent).
    var silenced: Set<ReplicaID> = []
    /// Drop filter applied to each delivered envelope.
    var drop: (Envelope) -> Bool = { _ in false }

    init(replicaCount: Int = 4, settings: ProtocolSettings = ProtocolSettings(checkpointInterval: 4, watermarkWindow: 8),
         limits: Limits = Limits()) throws {
        let configuration = try ClusterConfiguration(replicaCount: replicaCount)
        replicas = configuration.replicas.map {
            PBFTReplica(id: $0, configuration: configuration, settings: settings, limits: limits)
        }
        executedHistory = Array(repeating: [], count: replicaCount)
        applicationState = Array(repeating: [], count: replicaCount)
    }

    static func request(_ client: UInt32, _ timestamp: UInt64, _ operation: [UInt8] = [1]) -> Request {
        Request(client: ClientID(client), timestamp: Timestamp(timestamp), operation: operation)
    }

    /// Submits a request at one replica, then flushes it.
    mutating func submit(_ request: Request, to replica: ReplicaID) {
        var actions: [Action<PBFTMessage>] = []
        do {
            try replicas[index(replica)].submit(Verified(checked: request), into: &actions)
        } catch {
            rejections.append((replica, error))
        }
        replicas[index(replica)].flush(into: &actions)
        perform(actions, at: replica)
    }

    /// Delivers one message directly (used to inject Byzantine messages).
    @discardableResult
    mutating func deliver(_ message: PBFTMessage, to replica: ReplicaID) -> Rejection? {
        var actions: [Action<PBFTMessage>] = []
        var rejection: Rejection?
        do {
            try replicas[index(replica)].receive(Verified(checked: message), into: &actions)
        } catch {
            rejection = error
            rejections.append((replica, error))
        }
        replicas[index(replica)].flush(into: &actions)
        perform(actions, at: replica)
        return rejection
    }

    /// Delivers queued messages until the network is empty (or `limit` deliveries).
    mutating func run(limit: Int = 100_000) {
        var delivered = 0
        while !network.isEmpty && delivered < limit {
            let envelope = network.removeFirst()
            delivered += 1
            if drop(envelope) { continue }
            deliver(envelope.message, to: envelope.to)
        }
    }

    mutating func perform(_ actions: [Action<PBFTMessage>], at replica: ReplicaID) {
        for action in actions {
            switch action {
            case .send(let message, let to):
                if !silenced.contains(replica) { network.append(Envelope(from: replica, to: to, message: message)) }
            case .broadcast(let message):
                guard !silenced.contains(replica) else { continue }
                for other in replicas.map(\.id) where other != replica {
                    network.append(Envelope(from: replica, to: other, message: message))
                }
            case .reply(let reply):
                replies.append(reply)
            case .execute(let batch):
                execute(batch, at: replica)
            case .observe(let event):
                events.append((replica, event))
            }
        }
    }

    /// Executes synchronously: the state is the concatenation of operations; the result echoes the operation.
    mutating func execute(_ batch: ExecutionBatch, at replica: ReplicaID) {
        let index = index(replica)
        executedHistory[index].append((batch.sequence, batch.requests))
        for request in batch.requests {
            applicationState[index].append(contentsOf: request.operation)
        }
        let digest: Digest? = batch.checkpoint ? Digest.of(applicationState[index]) : nil
        var actions: [Action<PBFTMessage>] = []
        replicas[index].executed(batch.sequence, results: batch.requests.map(\.operation), applicationDigest: digest, into: &actions)
        perform(actions, at: replica)
    }

    func index(_ replica: ReplicaID) -> Int { Int(replica.rawValue) }

    func replies(for client: UInt32, _ timestamp: UInt64) -> [Reply] {
        replies.filter { $0.client == ClientID(client) && $0.timestamp == Timestamp(timestamp) }
    }

    func executedSequences(_ replica: ReplicaID) -> [UInt64] {
        executedHistory[index(replica)].map(\.0.rawValue)
    }

    func executedRequests(_ replica: ReplicaID) -> [Request] {
        executedHistory[index(replica)].flatMap(\.1)
    }
}

let replica0 = ReplicaID(0)
let replica1 = ReplicaID(1)
let replica2 = ReplicaID(2)
let replica3 = ReplicaID(3)
