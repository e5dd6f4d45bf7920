import ThemisCore

/// PBFT (Castro & Liskov, OSDI'99) as a pure state machine: no I/O, no clocks, no randomness.
///
/// The replica is a value; the driver feeds it verified inputs and carries out the actions it appends
/// (see `ReplicaCore` for the driver procedure and `Action` for the ordering contract). Normal case,
/// checkpointing and (next) view change live in their own files as extensions.
public struct PBFTReplica: ReplicaCore {
    public typealias Message = PBFTMessage

    /// Where the replica is in the protocol. View change adds a `viewChanging` case.
    public enum Status: Hashable, Sendable {
        /// Accepting normal-case messages of `view`.
        case normal
    }

    public let id: ReplicaID
    public let configuration: ClusterConfiguration
    public let settings: ProtocolSettings
    public let limits: Limits

    public internal(set) var view = View(0)
    public internal(set) var status = Status.normal
    /// h: the sequence number of the last stable checkpoint. Accepted sequence numbers are h < s <= h + L.
    public internal(set) var lowWatermark = SequenceNumber.zero
    /// The last sequence number handed to the application (`execute` emitted).
    public internal(set) var lastScheduled = SequenceNumber.zero
    /// The last sequence number the application reported as executed.
    public internal(set) var lastExecuted = SequenceNumber.zero
    /// The last sequence number this replica assigned as primary.
    public internal(set) var lastProposed = SequenceNumber.zero

    /// Protocol state per sequence number in the window (h, h + L].
    var log: [SequenceNumber: Slot] = [:]
    /// Requests waiting at the primary for a batch, in arrival order.
    var pendingRequests = RequestQueue()
    /// The highest timestamp per client queued or proposed by this primary (de-duplicates retransmissions).
    var proposedTimestamps: [ClientID: Timestamp] = [:]
    /// The highest timestamp per client that this backup relayed to the primary.
    var relayedTimestamps: [ClientID: Timestamp] = [:]
    /// Batches handed to the application and not yet reported back, oldest first.
    var executing: [ExecutionBatch] = []
    var clientTable = ClientTable()
    var checkpoints = CheckpointTracker()

    /// - Precondition: `id` is a replica of `configuration` and `settings` are valid.
    public init(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits) {
        precondition(configuration.contains(id), "\(id) is not in a cluster of \(configuration.replicaCount)")
        precondition(settings.problem == nil, settings.problem ?? "")
        self.id = id
        self.configuration = configuration
        self.settings = settings
        self.limits = limits
    }

    public var primary: ReplicaID { configuration.primary(of: view) }
    public var isPrimary: Bool { primary == id }
    /// H = h + L.
    public var highWatermark: SequenceNumber { lowWatermark + settings.watermarkWindow }
    /// The digest of the last stable checkpoint's state, if any was reached.
    public var stableCheckpointDigest: Digest? { checkpoints.stableDigest }

    public mutating func receive(_ message: Verified<PBFTMessage>, into actions: inout [Action<PBFTMessage>]) throws(Rejection) {
        let sender = message.message.sender
        guard configuration.contains(sender) else { throw .unknownReplica(sender) }
        guard sender != id else { throw .fromSelf }
        switch message.message {
        case .request(let request, _):
            try receiveRelayedRequest(request, into: &actions)
        case .prePrepare(let prePrepare):
            try receivePrePrepare(prePrepare, into: &actions)
        case .prepare(let prepare):
            try receivePrepare(prepare, into: &actions)
        case .commit(let commit):
            try receiveCommit(commit, into: &actions)
        case .checkpoint(let checkpoint):
            try receiveCheckpoint(checkpoint, into: &actions)
        }
    }

    public mutating func tick(into actions: inout [Action<PBFTMessage>]) {
        // Request timers and view change arrive with the view-change sub-protocol.
    }

    public mutating func flush(into actions: inout [Action<PBFTMessage>]) {
        proposeBatches(into: &actions)
    }

    /// Checks the watermarks h < s <= h + L.
    func checkWatermarks(_ sequence: SequenceNumber) throws(Rejection) {
        guard sequence > lowWatermark, sequence <= highWatermark else {
            throw .outsideWatermarks(sequence, low: lowWatermark, high: highWatermark)
        }
    }

    /// Checks that a normal-case message belongs to the current view and that we are not changing views.
    func checkView(_ messageView: View) throws(Rejection) {
        switch status {
        case .normal:
            guard messageView == view else { throw .wrongView(message: messageView, current: view) }
        }
    }
}
