import ThemisCore
import ThemisProtocolKit

/// PBFT (Castro & Liskov, OSDI'99) as a pure state machine: no I/O, no clocks, no randomness.
///
/// The replica is a value; the driver feeds it verified inputs and carries out the actions it appends
/// (see `ReplicaCore` for the driver procedure and `Action` for the ordering contract). Normal case,
/// checkpointing and view change live in their own folders as extensions.
public struct PBFTReplica: ReplicaCore {
    public typealias Message = PBFTMessage

    /// Where the replica is in the protocol.
    public enum Status: Hashable, Sendable {
        /// Accepting normal-case messages of `view`.
        case normal
        /// Sent VIEW-CHANGE for the target view; waiting for its NEW-VIEW. Normal-case messages are refused.
        case viewChanging(to: View)
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
    /// Ticks seen so far.
    public internal(set) var now: UInt64 = 0

    /// Protocol state per sequence number in the window (h, h + L], for the current view.
    var log: [SequenceNumber: Slot] = [:]
    /// Requests waiting at the primary for a batch, in arrival order.
    var pendingRequests = RequestQueue()
    /// Clients with a request in `pendingRequests` (at most one each).
    var queuedClients = Set<ClientID>()
    /// The highest timestamp per client queued or proposed by this primary in this view.
    var proposedTimestamps: [ClientID: Timestamp] = [:]
    /// The highest timestamp per client that this backup relayed to the primary of this view.
    var relayedTimestamps: [ClientID: (timestamp: Timestamp, tick: UInt64)] = [:]
    /// Batches handed to the application and not yet reported back, oldest first.
    var executing: [ExecutionBatch] = []
    var clientTable = ClientTable()
    var checkpoints = CheckpointTracker()
    /// View-change state: request timers, certificates, VIEW-CHANGEs received.
    var viewChange = ViewChangeState()
    /// State-transfer state: own checkpoint states, a fetch in progress, fetched batches.
    var stateTransfer = StateTransferState()
    /// Durable mode (set by `restore`): the core appends `persist` records.
    public internal(set) var persistsRecords = false
    /// Durable mode: the view this replica was restored in (from a log that was not empty). Its own proposals
    /// (as the primary) and the PRE-PREPAREs it accepted (as a backup) are not urgent records, so it may have
    /// forgotten one it acted on: in this view it proposes nothing and sends no PREPARE for a slot its log did
    /// not give back (the view change replaces the view; its COMMITs, sent after urgent `prepared` records, go on).
    var restoredView: View?
    /// The stable checkpoint moved (or its state arrived) since it was last persisted.
    var stableCheckpointUnpersisted = false
    /// The recovery protocol's state (a replica that lost its state votes only once it is safe).
    var recovery = RecoveryState()
    /// Tentative execution: the batches handed to the application before they were confirmed committed, in
    /// order from `lastScheduled + 1`, with their digests. See `TentativeExecution.swift`.
    var tentative: [(sequence: SequenceNumber, digest: Digest)] = []
    /// Tentative batches were undone: once execution is idle, the stable checkpoint's state is installed again.
    var undoPending = false
    /// The highest sequence number executed before an undo: read-only requests wait until execution is back.
    var undoHighWater = SequenceNumber.zero
    /// Test-only fault (the simulator's "checkers can fail" test): count every PREPARE and COMMIT towards
    /// a quorum whatever its digest, i.e. disable one acceptance check. Never set outside tests.
    package var testingIgnoreDigestsInQuorums = false

    /// - Precondition: `id` is a replica of `configuration` and `settings` are valid.
    public init(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits) {
        precondition(configuration.contains(id), "\(id) is not in a cluster of \(configuration.replicaCount)")
        precondition(settings.problem == nil, settings.problem ?? "")
        self.id = id
        self.configuration = configuration
        self.settings = settings
        self.limits = limits
    }

    /// A one-line summary of the internal state, for investigating a simulation.
    public var debugDescription: String {
        "now \(now) waiting \(viewChange.waiting.count) requestDeadline \(viewChange.requestDeadline.map(String.init) ?? "-") "
            + "attempts \(viewChange.attempts) vcDeadline \(viewChange.viewChangeDeadline.map(String.init) ?? "-") "
            + "viewChanges \(viewChange.received.values.map { "\($0.message.sender.rawValue)->\($0.message.newView.rawValue)" }.sorted()) "
            + "future \(viewChange.future.count) log \(log.count) pending \(pendingRequests.count) executing \(executing.count) "
            + "fetch \(stateTransfer.fetch.map { "\($0.sequence.rawValue)@\($0.peer.rawValue)" } ?? "-") "
            + "recovering \(recovery.active) target \(recovery.target.map { String($0.rawValue) } ?? "-") fill \(recovery.fillTarget.rawValue) "
            + "stableProof \(checkpoints.stableProof.map { "\($0.message.sender.rawValue)\($0.authenticator.isEmpty ? "*" : "")" }.joined(separator: ","))"
    }

    /// As `ReplicaCore`'s default, and with tentative execution: not while a batch executed tentatively has not
    /// committed here (Castro and Liskov 5.1.3: a read must not see a write that may still be undone), and not
    /// after an undo until execution is back where it was (a client may have completed a write on the state that
    /// was undone).
    public var servesReadOnlyRequests: Bool { readsServableBesidesTentative && tentative.isEmpty }

    /// Reads wait at the driver (`defersReadOnlyRequests`) while only tentative batches keep them back.
    public var defersReadOnlyRequests: Bool { readsServableBesidesTentative && !tentative.isEmpty }

    private var readsServableBesidesTentative: Bool {
        !isRecovering && lastExecuted >= stableCheckpoint && !undoPending && lastExecuted >= undoHighWater
    }

    public var primary: ReplicaID { configuration.primary(of: view) }
    public var isPrimary: Bool { primary == id }
    /// H = h + L.
    public var highWatermark: SequenceNumber { lowWatermark + settings.watermarkWindow }
    /// The last stable checkpoint (the low watermark).
    public var stableCheckpoint: SequenceNumber { lowWatermark }
    /// The digest of the last stable checkpoint's state, if any was reached.
    public var stableCheckpointDigest: Digest? { checkpoints.stableDigest }

    public mutating func receive(_ verified: Verified<PBFTMessage>, into actions: inout [PBFTAction]) throws(Rejection) {
        let sender = verified.message.sender
        guard configuration.contains(sender) else { throw .unknownReplica(sender) }
        guard sender != id else { throw .fromSelf }
        let authenticator = verified.authenticator
        switch verified.message {
        case .request(let request, _):
            try receiveRelayedRequest(request, into: &actions)
        case .prePrepare(let prePrepare):
            try receivePrePrepare(
                Authenticated(prePrepare, authenticator: authenticator), requestsUnverified: verified.requestsUnverified, into: &actions)
        case .prepare(let prepare):
            try receivePrepare(Authenticated(prepare, authenticator: authenticator), into: &actions)
        case .commit(let commit):
            try receiveCommit(commit, into: &actions)
        case .checkpoint(let checkpoint):
            try receiveCheckpoint(Authenticated(checkpoint, authenticator: authenticator), into: &actions)
        case .viewChange(let message):
            try receiveViewChange(Authenticated(message, authenticator: authenticator), into: &actions)
        case .newView(let message):
            try receiveNewView(message, authenticator: authenticator, into: &actions)
        case .newViewRelay(let relay):
            try receiveNewView(relay.newView.message, authenticator: relay.newView.authenticator, into: &actions)
        case .fetchState(let message):
            try serveFetch(.fetchState(message), from: message.sender, into: &actions)
        case .stateChunk(let message):
            try receiveStateChunk(message, into: &actions)
        case .fetchBatches(let message):
            try serveFetch(.fetchBatches(message), from: message.sender, into: &actions)
        case .committedBatches(let message):
            try receiveCommittedBatches(message, into: &actions)
        case .recoveryQuery(let message):
            receiveRecoveryQuery(message, into: &actions)
        case .recoveryReply(let message):
            try receiveRecoveryReply(message, into: &actions)
        }
    }

    public mutating func flush(into actions: inout [PBFTAction]) {
        proposeBatches(into: &actions)
        persistStableCheckpoint(into: &actions)
        persistRecoveryCompletion(into: &actions)
    }

    /// The checks of a normal-case message of `messageView` that do not need this replica to be in that
    /// view: who may send it, the watermarks, and a PRE-PREPARE's batch.
    func checkEarly(_ message: PBFTMessage, in messageView: View) throws(Rejection) {
        let primaryOfView = configuration.primary(of: messageView)
        switch message {
        case .prePrepare(let prePrepare):
            guard prePrepare.sender == primaryOfView else { throw .notFromPrimary(prePrepare.sender, primary: primaryOfView) }
            try checkWatermarks(prePrepare.sequence)
            try checkBatch(prePrepare)
        case .prepare(let prepare):
            guard prepare.sender != primaryOfView else { throw .prepareFromPrimary(prepare.sender) }
            try checkWatermarks(prepare.sequence)
        case .commit(let commit):
            try checkWatermarks(commit.sequence)
        case .request, .checkpoint, .viewChange, .newView, .fetchState, .stateChunk, .fetchBatches, .committedBatches, .recoveryQuery,
             .recoveryReply, .newViewRelay:
            break
        }
    }

    /// The batch of a PRE-PREPARE is what a correct primary makes: up to `batchRequestsMax` requests (none: a
    /// null batch, which an idle primary proposes for a recovering replica), no
    /// operation over `operationBytesMax`, several requests only within `batchBytesMax` (by the estimate
    /// `RequestQueue.popFirst` cuts with), and the digest matches.
    func checkBatch(_ prePrepare: PrePrepare) throws(Rejection) {
        let requests = prePrepare.requests
        guard requests.count <= limits.batchRequestsMax else { throw .invalidBatchSize(requests.count) }
        var bytes = 0
        for request in requests {
            guard request.operation.count <= limits.operationBytesMax else { throw .operationTooLarge(request.operation.count) }
            bytes += request.operation.count + request.authenticator.count + 64
        }
        guard requests.count == 1 || bytes <= limits.batchBytesMax else { throw .batchTooLarge(bytes: bytes) }
        guard Request.batchDigest(requests) == prePrepare.digest else { throw .batchDigestMismatch(prePrepare.sequence) }
    }

    /// Checks the watermarks h < s <= h + L.
    func checkWatermarks(_ sequence: SequenceNumber) throws(Rejection) {
        guard sequence > lowWatermark, sequence <= highWatermark else {
            throw .outsideWatermarks(sequence, low: lowWatermark, high: highWatermark)
        }
    }

    /// Normal-case messages must belong to the current view, and none is accepted while changing views.
    /// Messages for the next view are checked as far as they can be before that view starts (sender's
    /// role, watermarks, batch), kept within a per-sender budget of count and bytes, and replayed when this
    /// replica enters that view.
    /// - Returns: false if the message was buffered for a later view.
    mutating func checkView(_ messageView: View, _ message: @autoclosure () -> Verified<PBFTMessage>) throws(Rejection) -> Bool {
        let current: View
        switch status {
        case .normal: current = view
        case .viewChanging(let target): current = target
        }
        if messageView > current || (messageView == current && status != .normal) {
            // Only the next views are worth keeping; the limit is per sender, so no replica can crowd
            // out the others' early messages.
            guard messageView.rawValue <= current.rawValue + 1 else { throw .wrongView(message: messageView, current: view) }
            let early = message()
            try checkEarly(early.message, in: messageView)
            // A correct primary has at most pipelineDepthMax batches in flight: a budget of that many full
            // batches per sender bounds what a faulty replica can park here (issue 9, finding 3).
            viewChange.buffer(early, limitPerSender: Int(settings.watermarkWindow),
                              bytesPerSenderMax: ViewChangeState.futureBytesPerSenderMax(limits))
            return false
        }
        guard messageView == view else { throw .wrongView(message: messageView, current: view) }
        guard status == .normal else { throw .viewChanging(to: current) }
        return true
    }
}
