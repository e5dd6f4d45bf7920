// A cluster of pure Hybster cores wired by a loss-free queue: trusted subsystems are software counters over
// in-memory stores that outlive a restart; the application echoes operations. No ingress: certificates are
// genuine here (the ingress's checks have their own tests), so these tests exercise the core's rules.
import Crypto
import ThemisCore
import ThemisCrypto
@testable import ThemisHybster

final class MiniHybster {
    let configuration: ClusterConfiguration
    let settings: ProtocolSettings
    let limits = Limits()
    let key = SymmetricKey(data: [UInt8](repeating: 3, count: 32))
    var stores: [[InMemoryCounterStore]]
    var nodes: [HybsterReplica] = []
    var inbox: [(to: Int, message: HybsterMessage)] = []
    /// Executed batches per replica, by order number.
    var executed: [[SequenceNumber: [Request]]]
    var replies: [[Reply]]
    var events: [[HybsterEvent]]
    var rejections: [[HybsterRejection]]
    /// Replicas that receive nothing and send nothing (crashed or silent).
    var down: Set<Int> = []
    /// Durable mode: each replica's records since its last saved checkpoint state, and that state.
    var disks: [(records: [HybsterRecord], state: (SequenceNumber, [UInt8])?)]
    /// Durable mode: each replica's records before its last saved checkpoint state (the segment a storage deletes
    /// only once the new one, which restates them, is synced).
    var retired: [[HybsterRecord]]
    /// Per replica: the checkpoints it staged (`stageCheckpoint`), in order.
    var staged: [[SequenceNumber]]

    init(replicas: Int = 3, pillars: UInt32 = 1, checkpointInterval: UInt64 = 4, window: UInt64 = 8, durable: Bool = false) throws {
        configuration = try ClusterConfiguration(replicaCount: replicas, faultModel: .hybrid)
        var settings = ProtocolSettings(checkpointInterval: checkpointInterval, watermarkWindow: window, requestTimeoutTicks: 10)
        settings.pillars = pillars
        self.settings = settings
        stores = (0..<replicas).map { _ in (0..<Int(pillars)).map { _ in InMemoryCounterStore() } }
        executed = Array(repeating: [:], count: replicas)
        replies = Array(repeating: [], count: replicas)
        events = Array(repeating: [], count: replicas)
        rejections = Array(repeating: [], count: replicas)
        disks = Array(repeating: ([], nil), count: replicas)
        retired = Array(repeating: [], count: replicas)
        staged = Array(repeating: [], count: replicas)
        nodes = try (0..<replicas).map { try makeCore($0) }
        if durable { for index in 0..<replicas { try restartFromDisk(index) } }
    }

    /// Durable mode: a fresh core rebuilt from replica `index`'s disk (everything it persisted survives).
    func restartFromDisk(_ index: Int) throws {
        nodes[index] = try makeCore(index)
        executed[index] = [:]
        let disk = disks[index]
        var actions: [HybsterAction] = []
        try nodes[index].restore(disk.records, snapshot: { disk.state?.0 == $0 ? disk.state?.1 : nil }, into: &actions)
        perform(index, actions)
    }

    func environment(_ index: Int) -> CoreEnvironment {
        let stores = self.stores[index]
        let key = self.key
        return CoreEnvironment { pillar throws(TrustedCounterError) in
            try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(UInt32(index)), pillar: pillar), key: key, store: stores[Int(pillar)])
        }
    }

    func makeCore(_ index: Int) throws -> HybsterReplica {
        try Hybster.makeCore(id: ReplicaID(UInt32(index)), configuration: configuration, settings: settings, limits: limits,
                             environment: environment(index))
    }

    /// The replica starts again with an empty state; its trusted subsystems keep their counters.
    func restart(_ index: Int) throws {
        nodes[index] = try makeCore(index)
        executed[index] = [:]
    }

    func perform(_ index: Int, _ actions: [HybsterAction]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let message, let target):
                inbox.append((Int(target.rawValue), message))
            case .broadcast(let message):
                for other in nodes.indices where other != index { inbox.append((other, message)) }
            case .reply(let reply):
                replies[index].append(reply)
            case .execute(let batch):
                executed[index][batch.sequence] = batch.requests
                var more: [HybsterAction] = []
                let snapshot: [UInt8]? = batch.checkpoint ? Array("state \(executed[index].count)".utf8) : nil
                nodes[index].executed(batch.sequence, results: batch.requests.map(\.operation), applicationSnapshot: snapshot, into: &more)
                queue.append(contentsOf: more)
            case .installState(let sequence, _):
                executed[index] = executed[index].filter { $0.key > sequence }
            case .observe(let event):
                events[index].append(event)
            case .persist(let record):
                disks[index].records.append(record)
            case .persistCheckpoint(let sequence, let state):
                retired[index] = disks[index].records
                disks[index] = ([], (sequence, state))
            case .stageCheckpoint(let sequence, _):
                staged[index].append(sequence)
            }
        }
    }

    func submit(_ request: Request, to targets: [Int]) {
        for index in targets where !down.contains(index) {
            var actions: [HybsterAction] = []
            do { try nodes[index].submit(Verified(checked: request), into: &actions) } catch { rejections[index].append(error) }
            nodes[index].flush(into: &actions)
            perform(index, actions)
        }
    }

    func deliver(_ index: Int, _ message: HybsterMessage) {
        var actions: [HybsterAction] = []
        do { try nodes[index].receive(Verified(checked: message), into: &actions) } catch { rejections[index].append(error) }
        nodes[index].flush(into: &actions)
        perform(index, actions)
    }

    /// Delivers queued messages (dropping those to or from replicas that are down) until none is left.
    func deliverAll(steps: Int = 100_000) {
        var remaining = steps
        while !inbox.isEmpty, remaining > 0 {
            remaining -= 1
            let (to, message) = inbox.removeFirst()
            guard !down.contains(to), !down.contains(Int(message.sender.rawValue)) else { continue }
            deliver(to, message)
        }
    }

    func tick(_ count: Int) {
        for _ in 0..<count {
            for index in nodes.indices where !down.contains(index) {
                var actions: [HybsterAction] = []
                nodes[index].tick(into: &actions)
                perform(index, actions)
            }
            deliverAll()
        }
    }

    static func request(_ client: UInt32, _ timestamp: UInt64, _ text: String) -> Request {
        Request(client: ClientID(client), timestamp: Timestamp(timestamp), operation: Array(text.utf8))
    }
}
