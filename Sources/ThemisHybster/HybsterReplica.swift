import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

/// Hybster (Behl, Distler, Kapitza, EuroSys 2017) as a pure state machine, n = 2f + 1.
///
/// The core owns no threads, sockets or clocks. Its only outside party is its trusted subsystems (one per
/// pillar, `TrustedCounter`), which it calls synchronously to certify what it sends: PREPARE and COMMIT
/// at (view, order) on the counter of pillar order mod P, VIEW-CHANGE with continuing certificates,
/// NEW-VIEW-ACK, CHECKPOINT with a trusted MAC. Certificates of received messages were checked by the
/// ingress (`HybsterVerifier`); the core checks that each names the right subsystem, counter and value.
///
/// Rules that keep it safe with f + 1 votes (see README "Hybster"):
/// - a replica certifies on each pillar in order-number order, without gaps above its stable checkpoint
///   (`certified`), so a VIEW-CHANGE's continuing certificate proves its list of PREPAREs complete;
/// - a VIEW-CHANGE lists the PREPAREs of the last view the replica was in normal operation; a backup
///   entering a view with re-proposals certifies a NEW-VIEW-ACK at the highest re-proposed order of each
///   pillar, which makes it answer for all of them in its next VIEW-CHANGE;
/// - a replica whose counters are ahead of its state (restarted) certifies nothing until a NEW-VIEW
///   brings it into a view above them; meanwhile it catches up passively (state transfer, and batches
///   that f + 1 others committed).
public struct HybsterReplica: ReplicaCore {
    public typealias Message = HybsterMessage
    public typealias Event = HybsterEvent
    public typealias Rejection = HybsterRejection
    public typealias Record = HybsterRecord

    public enum Status: Hashable, Sendable {
        case normal
        case viewChanging(to: View)
    }

    public let id: ReplicaID
    public let configuration: ClusterConfiguration
    public let settings: ProtocolSettings
    public let limits: Limits

    /// The last view this replica entered in normal operation (the `fromView` of its VIEW-CHANGEs).
    public internal(set) var view = View(0)
    public internal(set) var status = Status.normal
    /// The last stable checkpoint: orders o with low < o <= low + L are accepted.
    public internal(set) var lowWatermark = SequenceNumber.zero
    public internal(set) var lastScheduled = SequenceNumber.zero
    public internal(set) var lastExecuted = SequenceNumber.zero
    public internal(set) var lastProposed = SequenceNumber.zero
    public internal(set) var now: UInt64 = 0
    /// Set while this replica's counters are ahead of its state: it takes part again in a view above this one.
    public internal(set) var recoveringBelow: View?

    /// The trusted subsystems, one per pillar.
    var subsystems: [any TrustedCounter]
    /// Per pillar, the last order number this replica certified in `view` (or the base it started from).
    var certified: [SequenceNumber]
    var log: [SequenceNumber: HybsterSlot] = [:]
    var pendingRequests = RequestQueue()
    var queuedClients = Set<ClientID>()
    var proposedTimestamps: [ClientID: Timestamp] = [:]
    var executing: [ExecutionBatch] = []
    var clientTable = ClientTable()
    var checkpoints = HybsterCheckpoints()
    var viewChange = HybsterViewChangeState()
    var stateTransfer = HybsterStateTransfer()
    /// Requests this replica expects to see executed (request timers), by client.
    var waiting: [ClientID: Request] = [:]
    var requestDeadline: UInt64?
    /// Durable mode (turned on by `restore`): the core appends `persist` records.
    public internal(set) var persistsRecords = false
    /// The stable checkpoint moved (or its state arrived) since the log last restated it.
    var stableCheckpointUnpersisted = false

    /// - Parameter subsystems: one trusted subsystem per pillar (`settings.pillars`), in pillar order.
    /// - Precondition: `id` is in `configuration`, the settings are valid and there is one subsystem per pillar.
    public init(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                subsystems: [any TrustedCounter]) {
        precondition(configuration.contains(id), "\(id) is not in a cluster of \(configuration.replicaCount)")
        precondition(settings.problem == nil, settings.problem ?? "")
        precondition(subsystems.count == Int(settings.pillars), "\(subsystems.count) trusted subsystems for \(settings.pillars) pillars")
        self.id = id
        self.configuration = configuration
        self.settings = settings
        self.limits = limits
        self.subsystems = subsystems
        self.certified = Array(repeating: .zero, count: subsystems.count)
        let ahead = subsystems.map { $0.value(of: 0) }.filter { $0 > .zero }
        if let highest = ahead.map(\.view).max() { recoveringBelow = View(highest) }
    }

    public var pillarCount: UInt64 { UInt64(subsystems.count) }
    public var primary: ReplicaID { configuration.primary(of: view) }
    public var isPrimary: Bool { primary == id }
    public var highWatermark: SequenceNumber { lowWatermark + settings.watermarkWindow }
    public var stableCheckpoint: SequenceNumber { lowWatermark }
    /// Not yet: a replica restarted empty has no estimate of how far it executed before (PBFT's recovery
    /// target), so it cannot tell when its state again covers every write it answered. Read-only requests
    /// fall back to ordering (the client does that when replicas do not answer).
    public var servesReadOnlyRequests: Bool { false }
    var quorum: Int { configuration.quorumSize }
    /// True if this replica may certify and vote now.
    var participates: Bool { recoveringBelow == nil }

    /// Takes part (`recoveringBelow` is nil), holds the batch of every PREPARE in its log and is not fetching
    /// state: a restarted replica is back in full (what it holds no longer depends on the others alone).
    public var hasCaughtUp: Bool {
        participates && stateTransfer.fetch == nil && stateTransfer.pending == nil
            && log.values.allSatisfy { $0.prepare == nil || $0.batch != nil }
    }

    func pillar(of order: SequenceNumber) -> Int { Int(order.rawValue % pillarCount) }

    /// A one-line summary of the internal state, for investigating a simulation.
    public var debugDescription: String {
        "now \(now) view \(view.rawValue) \(status) low \(lowWatermark.rawValue) sched \(lastScheduled.rawValue) "
            + "certified \(certified.map(\.rawValue)) log \(log.count) pending \(pendingRequests.count) waiting \(waiting.count) "
            + "vcs \(viewChange.received.values.map { "\($0.sender.rawValue)->\($0.toView.rawValue)" }.sorted()) "
            + "recovering \(recoveringBelow.map { String($0.rawValue) } ?? "-") fetch \(stateTransfer.fetch.map { String($0.sequence.rawValue) } ?? "-")"
    }

    public mutating func receive(_ verified: Verified<HybsterMessage>, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        let sender = verified.message.sender
        guard configuration.contains(sender) else { throw .unknownReplica(sender) }
        guard sender != id else { throw .fromSelf }
        switch verified.message {
        case .request(let request, _):
            try receiveRelayedRequest(request, into: &actions)
        case .prepare(let prepare):
            try receivePrepare(prepare, requestsUnverified: verified.requestsUnverified, into: &actions)
        case .commit(let commit):
            try receiveCommit(commit, into: &actions)
        case .checkpoint(let checkpoint):
            try receiveCheckpoint(checkpoint, into: &actions)
        case .viewChange(let message):
            try receiveViewChange(message, into: &actions)
        case .newView(let message):
            try receiveNewView(message, into: &actions)
        case .newViewAck(let message):
            try receiveNewViewAck(message, into: &actions)
        case .fetch(let message):
            try serveFetch(message, into: &actions)
        case .forward(let message):
            try receiveForward(message, requestsUnverified: verified.requestsUnverified, into: &actions)
        case .fetchState(let message):
            try serveState(message, into: &actions)
        case .stateChunk(let message):
            try receiveStateChunk(message, into: &actions)
        case .requestViewChange(let message):
            try receiveViewChangeRequest(message, into: &actions)
        case .stableCheckpoint(let message):
            try receiveStableCheckpoint(message, into: &actions)
        }
    }

    public mutating func flush(into actions: inout [HybsterAction]) {
        proposeBatches(into: &actions)
        persistStableCheckpoint(into: &actions)
    }

    /// Normal-case messages must be of this replica's view, while it is in normal operation. A recovering
    /// replica takes them too: it executes what f + 1 others commit, but certifies nothing (`participates`).
    func checkNormalCase(_ messageView: View) throws(HybsterRejection) {
        guard messageView == view else { throw .wrongView(message: messageView, current: view) }
        if case .viewChanging(let target) = status { throw .viewChanging(to: target) }
    }

    func checkWindow(_ order: SequenceNumber) throws(HybsterRejection) {
        guard order > lowWatermark, order <= highWatermark else {
            throw .outsideWindow(order, low: lowWatermark, high: highWatermark)
        }
    }

    /// An independent certificate by `replica`'s subsystem of the pillar of `order`, at (view, order).
    func checkOrdered(_ certificate: TrustedCertificate, by replica: ReplicaID, view: View, order: SequenceNumber) throws(HybsterRejection) {
        guard certificate.kind == .independent, certificate.counter == 0,
            certificate.subsystem == TrustedSubsystemID(replica: replica, pillar: UInt32(pillar(of: order))),
            certificate.value == CounterValue(view: view.rawValue, order: order.rawValue)
        else { throw .certificateMismatch("\(certificate.kind) by \(certificate.subsystem) at \(certificate.value) for (\(view.rawValue), \(order.rawValue)) of \(replica)") }
    }

    /// Certifies on the pillar of `order` at (view, order); nil (and an event) if the subsystem refuses.
    mutating func certify(_ digest: Digest, order: SequenceNumber, into actions: inout [HybsterAction]) -> TrustedCertificate? {
        let pillar = pillar(of: order)
        do {
            let certificate = try subsystems[pillar].certifyIndependent(digest, counter: 0, value: CounterValue(view: view.rawValue, order: order.rawValue))
            certified[pillar] = order
            return certificate
        } catch {
            actions.append(.observe(.certificationRefused(error.description)))
            return nil
        }
    }
}

/// Everything a replica knows about one order number in its current view.
struct HybsterSlot: Sendable {
    /// The primary's certified PREPARE (or NEW-VIEW re-proposal) header: the primary's vote.
    var prepare: PrepareHeader?
    /// Its batch; nil while a re-proposal's batch is being fetched.
    var batch: [Request]?
    /// COMMIT digests (and NEW-VIEW-ACKs for re-proposals) by sender, this replica's own included.
    var commits: [ReplicaID: Digest] = [:]
    /// This replica's certified COMMIT (repeated until the slot commits).
    var ownCommit: HybsterCommit?
    /// A request of the batch did not verify here: no COMMIT of ours until f other backups committed it.
    var awaitsVouchers = false
    var isCommitted = false
}
