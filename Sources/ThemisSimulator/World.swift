import struct Crypto.SymmetricKey
import NIOCore
import ThemisApps
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisWire

/// One message in flight.
package struct Packet {
    package let from: Principal
    package let to: Principal
    package let payload: ByteBuffer
}

package struct SimulatedReplica<Plugin: SimulationPlugin> {
    /// The real driver around the real core (the shell's), over the simulator's effects.
    package var driver: ReplicaDriver<Plugin>
    package var core: Plugin.Core {
        _read { yield driver.core }
    }
    /// A deliberately broken core (`Scenario.faultyCore`); a restart keeps it broken.
    package var faulty = false
    package var app = KeyValueStore()
    package var behavior: ByzantineBehavior?
    package var crashedUntil: UInt64?
    /// Recent messages this replica sent (for replaying).
    package var sent: [Plugin.Core.Message] = []
}

package struct SimulatedClient {
    package var core: ClientCore
    package var remaining: Int
    package var current: (request: Request, start: UInt64, readOnly: Bool)?
    package var serial = 0
}

/// The seeded world: replicas running the protocol's real core inside the real driver, clients running the
/// real client core, a network that delays, drops, duplicates and reorders, through the real codec, ingress
/// and authenticators. Generic over the protocol; the protocol's adversary is its `SimulationPlugin`.
public final class World<Plugin: SimulationPlugin> {
    package let scenario: Scenario
    package let configuration: ClusterConfiguration
    package var random: SplitMix64
    package let keyrings: [Principal: Keyring]
    package var replicas: [SimulatedReplica<Plugin>]
    package var clients: [SimulatedClient]
    /// Packets by delivery tick.
    package var network: [UInt64: [Packet]] = [:]
    package var now: UInt64 = 0
    package var checker = Checker()
    package var trace = TraceHash()
    package var stats = SimulationStatistics()
    /// Replicas cut off from the network until the given tick (one direction if `outgoingOnly`).
    package var partitioned: [Int: (until: UInt64, outgoingOnly: Bool)] = [:]
    /// The protocol's adversary state (colluding replicas' shared choices, the flood's batch).
    package var adversary: Plugin.AdversaryState = Plugin.makeAdversaryState()
    /// Every request a client issued (Byzantine replicas use them to build valid-looking variants).
    package var requestPool: [Request] = []
    /// Encoded size of every batch a correct primary proposed, by digest: what a VIEW-CHANGE would carry
    /// if certificates held batches (statistics only).
    package var batchBytes: [Digest: Int] = [:]
    package var healed = false
    /// The Byzantine client's requests so far (it reuses and replays them).
    package var byzantineClientRequests: [Request] = []
    /// Prints view-change events and rejections of correct replicas (`--debug`).
    package var debugLog = false
    /// Replicas that crashed and restarted empty. In-memory mode, a restarted replica has forgotten what
    /// it voted for (amnesia), so it stays charged to the fault budget for the rest of the safety phase:
    /// more than f amnesiac replicas could vote for conflicting batches. (Found by seed 469.)
    package var amnesiac: Set<Int> = []
    /// What a correct core may hold at most (the plug-in's `retainedBytesBound`); the memory checker.
    package let retainedBytesBound: ByteParts
    /// The replica cut off by a long partition, and how far the others had executed when it healed.
    package var longPartitionVictim: Int?
    package var longPartitionTarget: UInt64 = 0
    /// Keygen's window: whether the primary was crashed after the load (finding 1).
    package var primaryCrashed = false
    /// The key of the trusted subsystems (hybrid protocols) and each replica's counter stores, by pillar.
    package let trustedKey: SymmetricKey
    package let counterStores: [[any TrustedCounterStore]]
    /// Durable mode (`Scenario.durable` and a protocol that has one): each replica's simulated disk.
    package let durable: Bool
    package var disks: [SimulatedDisk<Plugin.Core.Record>]
    package var powerCutDone = false
    /// `Scenario.rollingRestarts`: the next replica to restart and when.
    package var rollingNext = 0
    package var rollingAt: UInt64 = 200
    /// When each replica last restarted.
    package var restartedAt: [Int: UInt64] = [:]

    package init(scenario: Scenario) throws {
        self.scenario = scenario
        var random = SplitMix64(seed: scenario.seed)
        let configuration = try ClusterConfiguration(replicaCount: scenario.replicaCount, faultModel: Plugin.faultModel)
        self.configuration = configuration
        var keys: [Principal: PrivateKeys] = [:]
        var replicaEntries: [ClusterFile.Replica] = []
        for index in 0..<scenario.replicaCount {
            let principal = Principal.replica(ReplicaID(UInt32(index)))
            let mine = try PrivateKeys.derive(scheme: scenario.scheme, seed: random.seedBytes())
            keys[principal] = mine
            replicaEntries.append(.init(id: UInt32(index), host: "sim", port: 1 + index, signingKey: mine.publicSigningKey,
                                        agreementKey: mine.publicAgreementKey))
        }
        var clientEntries: [ClusterFile.Client] = []
        // The Byzantine client, if any, is the last one (its keys are drawn after the correct clients').
        for index in 0..<(scenario.clientCount + (scenario.byzantineClient ? 1 : 0)) {
            let principal = Principal.client(ClientID(UInt32(index)))
            let mine = try PrivateKeys.derive(scheme: scenario.scheme, seed: random.seedBytes())
            keys[principal] = mine
            clientEntries.append(.init(id: UInt32(index), signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
        }
        var settings = scenario.largeMessages
            ? ProtocolSettings(checkpointInterval: 64, watermarkWindow: 128, requestTimeoutTicks: 60)
            : scenario.keygenWindow
            ? ProtocolSettings(checkpointInterval: 1000, watermarkWindow: 2000, requestTimeoutTicks: 60)
            : ProtocolSettings(checkpointInterval: 8, watermarkWindow: 16, requestTimeoutTicks: 60)
        settings.pillars = scenario.pillars
        settings.tentativeExecution = scenario.tentativeExecution
        var limits = Limits()
        limits.stateChunkBytes = 512
        // A chunk digest list of 512 entries at most (the states here are tens of KB).
        limits.stateBytesMax = 256 * 1024
        limits.batchRequestsMax = scenario.largeMessages ? 32 : scenario.keygenWindow ? 2 : 8
        // The clients of the cluster file: the memory bound counts per client.
        limits.clientsMax = clientEntries.count
        if scenario.largeMessages || scenario.keygenWindow {
            // The smallest frame (in KiB) every message of this configuration fits: the frame checker then
            // fails any message a correct replica makes beyond the computed bound.
            limits.operationBytesMax = 4096
            let sizes = scenario.scheme.authenticatorSizes(replicaCount: scenario.replicaCount)
            let needed = KeyGeneration.frameBytesNeeded(configuration, settings: settings, limits: limits, authenticators: sizes, plugin: Plugin.self)
            limits.frameBytesMax = (needed + 1023) / 1024 * 1024
        }
        let file = ClusterFile(protocolName: Plugin.name, faultModel: Plugin.faultModel, authentication: scenario.scheme, settings: settings,
                               limits: limits, replicas: replicaEntries, clients: clientEntries)
        // The key of the cluster's trusted subsystems (hybrid protocols), and each replica's counter stores.
        // (From its own stream: the world's stays as it was, so PBFT's seeds replay as before.)
        var keyRandom = SplitMix64(seed: scenario.seed ^ 0x7121_5EED)
        let trustedKey = SymmetricKey(data: keyRandom.seedBytes())
        self.trustedKey = trustedKey
        self.counterStores = (0..<scenario.replicaCount).map { _ in
            (0..<Int(scenario.pillars)).map { _ in scenario.faultyCounter ? RollbackCounterStore() as any TrustedCounterStore : InMemoryCounterStore() }
        }
        var keyrings: [Principal: Keyring] = [:]
        let validated = try file.validated(source: "simulated cluster", allowingSimulatedScheme: true).checked(for: Plugin.self)
        let signatureMemo = SignatureMemo()
        for (principal, privateKeys) in keys {
            var isReplica = false
            if case .replica = principal { isReplica = true }
            keyrings[principal] = try Keyring(validated: validated, me: principal, keys: privateKeys, signatureMemo: signatureMemo,
                                              trusted: isReplica ? TrustedVerifier(key: trustedKey) : nil)
        }
        self.keyrings = keyrings
        if let frameBytesMax = scenario.frameBytesMaxOverride { limits.frameBytesMax = frameBytesMax }
        stats.frameBytesMax = limits.frameBytesMax
        let sizes = scenario.scheme.authenticatorSizes(replicaCount: scenario.replicaCount)
        var bound = Plugin.retainedBytesBound(
            configuration: configuration, settings: settings, limits: limits,
            authenticatorBytes: max(sizes.broadcast, sizes.request, sizes.pairwise), stateBytes: limits.stateBytesMax)
        if let override = scenario.retainedBytesBoundOverride {
            bound = ByteParts(bound.parts.map { ByteParts.Part(name: $0.name, bytes: override) })
        }
        retainedBytesBound = bound
        stats.retainedBytesBound = retainedBytesBound.total
        let counterStores = self.counterStores
        self.replicas = try configuration.replicas.map { id in
            let faulty = scenario.faultyCore && scenario.byzantine[Int(id.rawValue)] == nil
            var core = Plugin.makeCore(id: id, configuration: configuration, settings: settings, limits: limits, faulty: faulty,
                                       environment: Self.environment(stores: counterStores[Int(id.rawValue)], key: trustedKey, replica: id, now: 0,
                                                                    resumesOnlyUpward: scenario.counterResumesOnlyUpward))
            // The first start, known as such (restarts run the recovery protocol).
            Plugin.markFirstStart(&core)
            guard let keyring = keyrings[.replica(id)] else { throw ConfigurationError.unknownPrincipal(.replica(id), file: "simulated cluster") }
            return SimulatedReplica(driver: ReplicaDriver(core: core, keyring: keyring), faulty: faulty, behavior: scenario.byzantine[Int(id.rawValue)])
        }
        self.clients = (0..<scenario.clientCount).map { index in
            SimulatedClient(
                core: ClientCore(id: ClientID(UInt32(index)), configuration: configuration,
                                 options: ClientCore.Options(retransmitTicks: 40, deadlineTicks: 1_000_000_000)),
                remaining: scenario.operationsPerClient)
        }
        self.random = random
        durable = scenario.durable && Plugin.supportsDurability
        disks = Array(repeating: SimulatedDisk(), count: scenario.replicaCount)
        if durable {
            // Durable mode from the start: a restore from the empty disk turns it on.
            for index in replicas.indices { restoreFromDisk(index) }
        }
    }

    package func isCorrect(_ index: Int) -> Bool { replicas[index].behavior == nil }

    /// Replica `index`'s trusted subsystems: software counters over the world's stores, which outlive the
    /// replica's crashes (or, with `Scenario.faultyCounter`, forget everything: a counter that rolls back).
    package func environment(of index: Int) -> CoreEnvironment {
        Self.environment(stores: counterStores[index], key: trustedKey, replica: ReplicaID(UInt32(index)), now: now,
                         resumesOnlyUpward: scenario.counterResumesOnlyUpward)
    }

    /// `now` makes the incarnation (the recovery nonce) differ between restarts of a replica.
    static func environment(stores: [any TrustedCounterStore], key: SymmetricKey, replica: ReplicaID, now: UInt64,
                            resumesOnlyUpward: Bool = false) -> CoreEnvironment {
        CoreEnvironment(trustedSubsystem: { pillar throws(TrustedCounterError) in
            let counter = try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: replica, pillar: pillar), key: key, counters: 1, store: stores[Int(pillar)])
            return resumesOnlyUpward ? UpwardResumingCounter(counter) : counter
        }, incarnation: (now << 16) | UInt64(replica.rawValue) + 1)
    }

    /// Faults currently charged to the budget of f: Byzantine, crashed and partitioned replicas.
    package var faultsInUse: Int {
        Set(replicas.indices.filter { replicas[$0].behavior != nil || replicas[$0].crashedUntil != nil } + partitioned.keys)
            .union(amnesiac).count
    }

    // MARK: Network

    package func enqueue(_ message: WireMessage, from: Principal, to: Principal, measuring replicaMessage: Plugin.Core.Message? = nil) {
        var payload = ByteBufferAllocator().buffer(capacity: 256)
        WireCodec.encode(message, into: &payload)
        enqueue(payload: payload, kind: replicaMessage.map(Plugin.kindName) ?? wireKindName(message), from: from, to: to, measuring: replicaMessage)
    }

    /// A frame the real driver made (length prefix, then the payload).
    package func enqueue(frame: ByteBuffer, from: Principal, to: Principal, measuring replicaMessage: Plugin.Core.Message?) {
        var payload = frame
        payload.moveReaderIndex(forwardBy: WireCodec.frameHeaderBytes)
        enqueue(payload: payload, kind: replicaMessage.map(Plugin.kindName) ?? "reply", from: from, to: to, measuring: replicaMessage)
    }

    private func enqueue(payload: ByteBuffer, kind: String, from: Principal, to: Principal, measuring replicaMessage: Plugin.Core.Message?) {
        // Every message a correct replica makes fits a frame (the receiver would drop it otherwise: a
        // VIEW-CHANGE with whole batches once stopped a cluster for good).
        if case .replica(let sender) = from, isCorrect(Int(sender.rawValue)), payload.readableBytes > stats.frameBytesMax {
            checker.fail("frame", now, "replica \(sender.rawValue) made a \(kind) of \(payload.readableBytes) bytes, "
                + "over frameBytesMax \(stats.frameBytesMax)")
        }
        if case .replica(let sender) = from, isCorrect(Int(sender.rawValue)), let replicaMessage {
            measure(replicaMessage, bytes: payload.readableBytes)
        }
        if case .replica(let sender) = from, let cut = partitioned[Int(sender.rawValue)], cut.until > now { return }
        if case .replica(let target) = to, let cut = partitioned[Int(target.rawValue)], cut.until > now, !cut.outgoingOnly { return }
        if !healed && random.chance(scenario.dropPerMille, in: 1000) { return }
        let copies = !healed && random.chance(scenario.duplicatePerMille, in: 1000) ? 2 : 1
        for _ in 0..<copies {
            let at = now + random.pick(1...scenario.maxDelayTicks)
            network[at, default: []].append(Packet(from: from, to: to, payload: payload))
        }
    }

    /// Statistics on what a correct replica sent (the protocol's: PBFT measures its VIEW-CHANGEs).
    package func measure(_ message: Plugin.Core.Message, bytes: Int) {
        Plugin.measure(self, message, bytes: bytes)
    }

    package func others(than index: Int) -> [ReplicaID] {
        configuration.replicas.filter { $0.rawValue != UInt32(index) }
    }
}

/// What a run did, for the summary line.
public struct SimulationStatistics: Sendable {
    public var packetsDelivered = 0
    public var requestsCompleted = 0
    /// Read-only requests: answered by a replica, completed by a client without ordering, fallen back to ordering.
    public var readOnlyAnswered = 0
    public var readOnlyCompleted = 0
    public var readOnlyFallbacks = 0
    public var viewChanges = 0
    public var stateTransfers = 0
    /// PBFT's tentative execution: batches executed before they committed and confirmed, and undos (one per chain).
    public var tentativeCommitted = 0
    public var tentativeUndone = 0
    /// The median of the ordered operations' latencies in ticks, from start to completion at the client (the
    /// protocol's rounds on the simulated network: what tentative execution shortens).
    public var orderedLatencyTicksMedian: UInt64 = 0
    public var crashes = 0
    /// Replicas restarted empty that finished the recovery protocol (and stopped counting towards f).
    public var recoveries = 0
    /// Restarts of `Scenario.rollingRestarts`, and the distinct replicas they restarted.
    public var rollingRestarts = 0
    public var rollingReplicas: Set<Int> = []
    /// Ticks from each restart (empty) to the end of its recovery, in order.
    public var recoveryTicks: [UInt64] = []
    public var rejections = 0
    /// PRE-PREPAREs a correct replica could authenticate except for a client request in the batch.
    public var unverifiedBatches = 0
    /// The largest VIEW-CHANGE a correct replica sent (payload bytes).
    public var viewChangeBytesMax = 0
    /// Equivocations Byzantine replicas attempted, and those their trusted subsystems refused (hybrid protocols).
    public var equivocationsTried = 0
    public var equivocationsRefused = 0
    /// The most bytes of batches one of those VIEW-CHANGEs names by digest: what it would have carried
    /// when certificates held whole batches.
    public var viewChangeBatchBytesMax = 0
    /// The most prepared sequence numbers one of those VIEW-CHANGEs carries.
    public var viewChangePreparedMax = 0
    /// Inputs the ingress refused, by reason (counted in `rejections` too).
    public var ingressRefusals: [IngressRefusal: Int] = [:]
    /// The replicas' frame limit.
    public var frameBytesMax = 0
    /// The most a correct core held (the plug-in's `retainedBytes`, sampled every 16 ticks), and the bound.
    public var retainedBytesMax = 0
    /// Replicas cut off for most of the safety phase (`Scenario.longPartition`).
    public var longPartitions = 0
    /// How many sequence numbers the others had executed beyond the cut replica when the partition ended,
    /// and whether it executed up to there by the end of the run.
    public var longPartitionLag: UInt64 = 0
    public var longPartitionCaughtUp = false
    public var retainedBytesBound = 0
}

/// The kind of a wire message, for checker messages.
func wireKindName(_ message: WireMessage) -> String {
    switch message {
    case .replica(let payload): return "replica message (\(payload.protocolID))"
    case .hello: return "hello"
    case .helloProof: return "hello-proof"
    case .goodbye: return "goodbye"
    case .attachClient: return "attach-client"
    case .request: return "request"
    case .readOnlyRequest: return "read-only request"
    case .reply: return "reply"
    case .statusQuery: return "status-query"
    case .statusReport: return "status-report"
    }
}

/// Test-only: a subsystem that resumes from a replica's log only upward, so that a counter that certified in a
/// step a crash cut short stays ahead of the log (`Scenario.counterResumesOnlyUpward`).
struct UpwardResumingCounter: TrustedCounter {
    var base: SoftwareTrustedCounter
    init(_ base: SoftwareTrustedCounter) { self.base = base }
    var id: TrustedSubsystemID { base.id }
    func value(of counter: UInt32) -> CounterValue { base.value(of: counter) }
    mutating func certifyIndependent(_ digest: Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        try base.certifyIndependent(digest, counter: counter, value: value)
    }
    mutating func certifyContinuing(_ digest: Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        try base.certifyContinuing(digest, counter: counter, value: value)
    }
    func trustedMAC(_ digest: Digest) -> TrustedCertificate { base.trustedMAC(digest) }
    mutating func resume(counter: UInt32, at value: CounterValue) throws(TrustedCounterError) {
        try base.resume(counter: counter, at: max(value, base.value(of: counter)))
    }
    func verify(_ certificate: TrustedCertificate, for digest: Digest) -> Bool { base.verify(certificate, for: digest) }
}

/// Test-only: a counter store that keeps nothing, so every opening of a subsystem starts from 0 (a rolled-back
/// counter). With it a replica can certify two messages for one value: the checkers must catch what follows.
package final class RollbackCounterStore: TrustedCounterStore {
    package init() {}
    package func load() throws(TrustedCounterError) -> [UInt32: CounterValue] { [:] }
    package func persist(counter: UInt32, value: CounterValue) throws(TrustedCounterError) {}
}
