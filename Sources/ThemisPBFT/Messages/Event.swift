import ThemisCore

/// The actions of the PBFT core.
public typealias PBFTAction = Action<PBFTMessage, Event, PBFTRecord>

/// Typed observations from a core (the cores do not log).
public enum Event: Hashable, Sendable, ProtocolEvent {
    case batchProposed(SequenceNumber, requests: Int)
    /// A backup logged the batch of `SequenceNumber` but could not authenticate a request in it; it
    /// prepares only once f other backups have (a faulty client's MAC vector, or a faulty primary).
    case awaitingVouchers(SequenceNumber)
    /// f other backups prepared the batch this replica could not authenticate: it prepares it now.
    case vouchedFor(SequenceNumber)
    case prepared(SequenceNumber)
    case committed(SequenceNumber)
    case executed(SequenceNumber, requests: Int)
    /// Tentative execution: the batch executed before it committed has committed (it stays executed).
    case tentativeCommitted(SequenceNumber)
    /// Tentative execution: the chain of tentative batches from this one on is undone (this replica left the view
    /// before they committed, or another batch committed at one of their sequence numbers). Once per undo.
    case tentativeUndone(SequenceNumber)
    case checkpointTaken(SequenceNumber, Digest)
    case checkpointStable(SequenceNumber, Digest)
    /// A correct replica's checkpoint digest differs from the quorum's: it diverged (or was lied to).
    case checkpointMismatch(SequenceNumber, replica: ReplicaID)
    case requestRelayed(ClientID, Timestamp, to: ReplicaID)
    case cachedReplyResent(ClientID, Timestamp)
    /// This replica suspects the primary (or joined f+1 others) and moves to `View`.
    case viewChangeStarted(View)
    /// As the new primary, this replica sent NEW-VIEW for `View`.
    case newViewSent(View)
    /// This replica entered `View` in normal operation; `primary` leads it.
    case viewChanged(View, primary: ReplicaID)
    /// A quorum proves a stable checkpoint this replica has not reached: it needs state transfer.
    case stateTransferNeeded(SequenceNumber, Digest)
    /// Fetching the state of checkpoint `SequenceNumber` from `from`.
    case stateTransferStarted(SequenceNumber, from: ReplicaID)
    /// The state a peer served does not match the agreed digest (a Byzantine or stale peer); another is asked.
    case stateTransferRejected(SequenceNumber, from: ReplicaID)
    /// The state of checkpoint `SequenceNumber` is installed.
    case stateTransferFinished(SequenceNumber)
    /// A committed batch was taken from f+1 matching COMMITTED-BATCHES, or the batch of a slot accepted
    /// by digest arrived (one copy that matches the digest is enough).
    case batchFetched(SequenceNumber)
    /// A NEW-VIEW re-proposes a batch this replica does not hold: it votes on the digest and fetches it.
    case batchMissing(SequenceNumber)
    /// Durable mode: the replica was rebuilt from its write-ahead log (in `View`, stable checkpoint
    /// `stable`, `slots` sequence numbers above it).
    case restored(view: View, stable: SequenceNumber, slots: Int)
    /// Durable mode: restored as the primary of `View`; it proposes nothing more in it (it may have forgotten
    /// a proposal), so the others replace it by a view change.
    case restoredAsPrimary(View)
    /// Started with no memory of what it sent (in-memory mode, an empty data directory): it asks the others
    /// how far the cluster got and takes no part in agreement until it is past that point.
    case recoveryStarted
    /// A quorum answered: the replica votes again once a checkpoint at or above `target` is stable here
    /// (0 when every answer came from a replica with no history: the cluster's first start).
    case recoveryTargetKnown(target: SequenceNumber, fromBlankQuorum: Bool)
    /// The recovery is over: stable checkpoint `SequenceNumber` is at or above the target; the replica votes again.
    case recovered(SequenceNumber)
}

extension Event {
    /// The case name, without reflection (counted per event when the replica exports metrics).
    public var kind: String {
        switch self {
        case .batchProposed: "batchProposed"
        case .awaitingVouchers: "awaitingVouchers"
        case .vouchedFor: "vouchedFor"
        case .prepared: "prepared"
        case .committed: "committed"
        case .executed: "executed"
        case .tentativeCommitted: "tentativeCommitted"
        case .tentativeUndone: "tentativeUndone"
        case .checkpointTaken: "checkpointTaken"
        case .checkpointStable: "checkpointStable"
        case .checkpointMismatch: "checkpointMismatch"
        case .requestRelayed: "requestRelayed"
        case .cachedReplyResent: "cachedReplyResent"
        case .viewChangeStarted: "viewChangeStarted"
        case .newViewSent: "newViewSent"
        case .viewChanged: "viewChanged"
        case .stateTransferNeeded: "stateTransferNeeded"
        case .stateTransferStarted: "stateTransferStarted"
        case .stateTransferRejected: "stateTransferRejected"
        case .stateTransferFinished: "stateTransferFinished"
        case .batchFetched: "batchFetched"
        case .batchMissing: "batchMissing"
        case .restored: "restored"
        case .restoredAsPrimary: "restoredAsPrimary"
        case .recoveryStarted: "recoveryStarted"
        case .recoveryTargetKnown: "recoveryTargetKnown"
        case .recovered: "recovered"
        }
    }

    public var logLevel: EventLogLevel {
        switch self {
        case .checkpointStable: .info
        case .checkpointMismatch: .warning
        case .viewChangeStarted, .newViewSent, .viewChanged: .notice
        case .stateTransferNeeded, .stateTransferRejected: .warning
        case .stateTransferStarted, .stateTransferFinished, .restored, .restoredAsPrimary: .notice
        case .recoveryStarted, .recoveryTargetKnown, .recovered: .notice
        case .awaitingVouchers, .vouchedFor: .info
        case .batchFetched, .batchMissing: .debug
        case .tentativeUndone: .info
        case .batchProposed, .prepared, .committed, .executed, .checkpointTaken, .requestRelayed, .cachedReplyResent, .tentativeCommitted: .trace
        }
    }

    public var summary: String {
        switch self {
        case .checkpointStable(let sequence, let digest): "checkpoint stable: \(sequence.rawValue), digest \(digest)"
        case .checkpointMismatch(let sequence, _): "own checkpoint differs from the quorum's at \(sequence.rawValue)"
        case .viewChangeStarted(let target): "view change started to view \(target.rawValue)"
        case .newViewSent(let target): "sent NEW-VIEW as the new primary of view \(target.rawValue)"
        case .viewChanged(let view, let primary): "entered new view \(view.rawValue), primary \(primary.rawValue)"
        case .stateTransferNeeded(let sequence, _): "behind the stable checkpoint \(sequence.rawValue); state transfer needed"
        case .stateTransferStarted(let sequence, let peer): "state transfer started: checkpoint \(sequence.rawValue) from \(peer)"
        case .stateTransferRejected(let sequence, let peer):
            "state of checkpoint \(sequence.rawValue) from \(peer) does not match the agreed digest; asking another"
        case .stateTransferFinished(let sequence): "state transfer finished: checkpoint \(sequence.rawValue)"
        case .batchFetched(let sequence): "committed batch \(sequence.rawValue) fetched"
        case .restored(let view, let stable, let slots):
            "restored from the write-ahead log: view \(view.rawValue), stable checkpoint \(stable.rawValue), \(slots) slots above it"
        case .batchMissing(let sequence): "re-proposed batch \(sequence.rawValue) not held here; fetching it by digest"
        case .awaitingVouchers(let sequence):
            "a request in batch \(sequence.rawValue) does not verify here; waiting for f backups to prepare it"
        case .vouchedFor(let sequence): "f backups prepared batch \(sequence.rawValue), which this replica could not authenticate; preparing it"
        case .recoveryStarted: "started without memory of what it sent; asking the others how far the cluster got (no votes until then)"
        case .recoveryTargetKnown(let target, let blank):
            blank ? "every answer came from a replica with no history (the cluster's first start): voting"
                : "recovery target: no votes until checkpoint \(target.rawValue) is stable here"
        case .recovered(let sequence): "recovered: checkpoint \(sequence.rawValue) is stable here; voting again"
        case .tentativeUndone(let sequence):
            "batch \(sequence.rawValue), executed tentatively, did not commit in this view here; undoing it (stable checkpoint state, then re-execution)"
        default: "\(self)"
        }
    }

    public var common: CommonEvent? {
        switch self {
        case .checkpointTaken(let sequence, let digest): .checkpointTaken(sequence, digest)
        case .checkpointStable(let sequence, let digest): .checkpointStable(sequence, digest)
        case .viewChanged(let view, let primary): .viewChanged(view, primary: primary)
        case .stateTransferFinished(let sequence): .stateTransferFinished(sequence)
        case .tentativeCommitted(let sequence): .tentativeCommitted(sequence)
        case .tentativeUndone(let sequence): .tentativeUndone(sequence)
        default: nil
        }
    }
}
