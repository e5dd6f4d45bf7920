import ThemisCore
import ThemisCrypto

/// The actions of the Hybster core.
public typealias HybsterAction = Action<HybsterMessage, HybsterEvent, HybsterRecord>

/// Typed observations of the Hybster core (the core does not log).
public enum HybsterEvent: Hashable, Sendable, ProtocolEvent {
    case batchProposed(SequenceNumber, requests: Int)
    case committed(SequenceNumber)
    case executed(SequenceNumber, requests: Int)
    case checkpointTaken(SequenceNumber, Digest)
    case checkpointStable(SequenceNumber, Digest)
    case requestRelayed(ClientID, Timestamp, to: ReplicaID)
    case cachedReplyResent(ClientID, Timestamp)
    /// A request in the PREPARE of `SequenceNumber` does not verify here: the COMMIT waits for f other backups.
    case awaitingVouchers(SequenceNumber)
    case viewChangeStarted(View)
    case newViewSent(View)
    case viewChanged(View, primary: ReplicaID)
    case stateTransferStarted(SequenceNumber, from: ReplicaID)
    case stateTransferRejected(SequenceNumber, from: ReplicaID)
    case stateTransferFinished(SequenceNumber)
    /// The trusted subsystem refused to certify (a value already used: this replica restarted and has
    /// forgotten what it certified). The replica stays silent on that counter until a later view.
    case certificationRefused(String)
    /// This replica's counters are ahead of its state (it restarted): it certifies nothing until it enters a
    /// view above them through a NEW-VIEW.
    case recovering(View)
    case prepareFetched(SequenceNumber)
    /// Durable mode: rebuilt from the write-ahead log at start-up.
    case restored(view: View, stable: SequenceNumber, slots: Int)
}

extension HybsterEvent {
    public var logLevel: EventLogLevel {
        switch self {
        case .checkpointStable, .awaitingVouchers: .info
        case .viewChangeStarted, .newViewSent, .viewChanged, .stateTransferStarted, .stateTransferFinished, .recovering, .restored: .notice
        case .stateTransferRejected, .certificationRefused: .warning
        case .prepareFetched: .debug
        case .batchProposed, .committed, .executed, .checkpointTaken, .requestRelayed, .cachedReplyResent: .trace
        }
    }

    public var summary: String {
        switch self {
        case .checkpointStable(let sequence, let digest): "checkpoint stable: \(sequence.rawValue), digest \(digest)"
        case .viewChangeStarted(let target): "view change started to view \(target.rawValue)"
        case .newViewSent(let target): "sent NEW-VIEW as the new primary of view \(target.rawValue)"
        case .viewChanged(let view, let primary): "entered new view \(view.rawValue), primary \(primary.rawValue)"
        case .stateTransferStarted(let sequence, let peer): "state transfer started: checkpoint \(sequence.rawValue) from \(peer)"
        case .stateTransferRejected(let sequence, let peer): "state of checkpoint \(sequence.rawValue) from \(peer) does not match; asking another"
        case .stateTransferFinished(let sequence): "state transfer finished: checkpoint \(sequence.rawValue)"
        case .certificationRefused(let reason): "trusted subsystem refused to certify: \(reason)"
        case .restored(let view, let stable, let slots):
            "restored from the data directory: view \(view.rawValue), stable checkpoint \(stable.rawValue), \(slots) slots"
        case .recovering(let view): "counters are ahead of this replica's state: silent until a NEW-VIEW above view \(view.rawValue)"
        default: "\(self)"
        }
    }

    public var common: CommonEvent? {
        switch self {
        case .checkpointTaken(let sequence, let digest): .checkpointTaken(sequence, digest)
        case .checkpointStable(let sequence, let digest): .checkpointStable(sequence, digest)
        case .viewChanged(let view, let primary): .viewChanged(view, primary: primary)
        case .stateTransferFinished(let sequence): .stateTransferFinished(sequence)
        default: nil
        }
    }
}

/// Why the Hybster core refused an input. Peer input is rejected, never asserted.
public enum HybsterRejection: ProtocolRejection {
    case unknownReplica(ReplicaID)
    case fromSelf
    case wrongView(message: View, current: View)
    case viewChanging(to: View)
    case outsideWindow(SequenceNumber, low: SequenceNumber, high: SequenceNumber)
    case notFromPrimary(ReplicaID, primary: ReplicaID)
    case notPrimary(primary: ReplicaID)
    case batchDigestMismatch(SequenceNumber)
    case invalidBatchSize(Int)
    case operationTooLarge(Int)
    case batchTooLarge(bytes: Int)
    /// A certificate of the wrong kind, subsystem, counter or value for the message it comes with.
    case certificateMismatch(String)
    case equivocation(ReplicaID, SequenceNumber)
    case duplicate
    case staleTimestamp(ClientID, Timestamp, lastExecuted: Timestamp)
    case overloaded
    case tooManyClients
    case clientRequestQueued(ClientID)
    case notACheckpointSequence(SequenceNumber)
    case staleCheckpoint(SequenceNumber)
    /// A VIEW-CHANGE or NEW-VIEW that breaks a rule (the reason names it).
    case invalidViewChange(String)
    case invalidNewView(String)
    case stateUnavailable(SequenceNumber)
    case unexpectedStateChunk
    /// Not primary, recovering, or otherwise not taking part right now.
    case notParticipating

    public var kind: String {
        let text = "\(self)"
        return String(text.prefix { $0 != "(" })
    }

    public var description: String {
        switch self {
        case .unknownReplica(let replica): "unknown replica \(replica)"
        case .fromSelf: "message claims to come from this replica"
        case .wrongView(let message, let current): "message for view \(message.rawValue), this replica is in \(current.rawValue)"
        case .viewChanging(let target): "changing to view \(target.rawValue)"
        case .outsideWindow(let order, let low, let high): "order \(order.rawValue) outside (\(low.rawValue), \(high.rawValue)]"
        case .notFromPrimary(let sender, let primary): "\(sender) is not the primary (\(primary))"
        case .notPrimary(let primary): "not the primary; the primary is \(primary)"
        case .batchDigestMismatch(let order): "batch of order \(order.rawValue) does not match its digest"
        case .invalidBatchSize(let count): "batch of \(count) requests"
        case .operationTooLarge(let bytes): "operation of \(bytes) bytes"
        case .batchTooLarge(let bytes): "batch of \(bytes) bytes"
        case .certificateMismatch(let reason): "certificate mismatch: \(reason)"
        case .equivocation(let replica, let order): "\(replica) sent two different messages for order \(order.rawValue)"
        case .duplicate: "duplicate"
        case .staleTimestamp(let client, let timestamp, let last): "\(client) timestamp \(timestamp) older than executed \(last)"
        case .overloaded: "request queue full"
        case .tooManyClients: "too many clients"
        case .clientRequestQueued(let client): "\(client) already has a request queued"
        case .notACheckpointSequence(let sequence): "\(sequence.rawValue) is not a checkpoint order number"
        case .staleCheckpoint(let sequence): "checkpoint \(sequence.rawValue) is stale"
        case .invalidViewChange(let reason): "invalid VIEW-CHANGE: \(reason)"
        case .invalidNewView(let reason): "invalid NEW-VIEW: \(reason)"
        case .stateUnavailable(let sequence): "state of checkpoint \(sequence.rawValue) not held"
        case .unexpectedStateChunk: "unexpected state chunk"
        case .notParticipating: "not taking part right now"
        }
    }
}
