import ThemisCore
import ThemisProtocolKit

/// Why a protocol core refused an input. Peer input that is malformed or out of place is rejected,
/// never asserted: the shell counts rejections (metric) and logs them at debug level.
public enum Rejection: ProtocolRejection {
    /// The message names a replica outside the configuration.
    case unknownReplica(ReplicaID)
    /// A replica sent us a message claiming to be from ourselves.
    case fromSelf
    /// The message is for another view than the one this replica is in.
    case wrongView(message: View, current: View)
    /// The sequence number is outside the watermarks h < s <= h + L.
    case outsideWatermarks(SequenceNumber, low: SequenceNumber, high: SequenceNumber)
    /// A normal-case message that only the primary may send came from a backup.
    case notFromPrimary(ReplicaID, primary: ReplicaID)
    /// The primary sent a PREPARE (it sends the PRE-PREPARE instead).
    case prepareFromPrimary(ReplicaID)
    /// The pre-prepare's digest does not match its batch.
    case batchDigestMismatch(SequenceNumber)
    /// The batch is empty where it must not be, or larger than `Limits.batchRequestsMax`.
    case invalidBatchSize(Int)
    /// A second, different message for the same slot from the same sender: the sender equivocates.
    case equivocation(ReplicaID, SequenceNumber)
    /// The same message again; harmless, counted.
    case duplicate
    /// A request whose timestamp is older than the last one executed for its client.
    case staleTimestamp(ClientID, Timestamp, lastExecuted: Timestamp)
    /// The primary's request queue is full (backpressure).
    case overloaded
    /// A batch of several requests larger than `Limits.batchBytesMax` (by the estimate the primary cuts
    /// batches with): a correct primary never makes one, and it would not fit the messages that forward it.
    case batchTooLarge(bytes: Int)
    /// The primary already queues a request of this client; a newer one waits until that one is
    /// proposed (one queued request per client keeps one client from crowding out the others).
    case clientRequestQueued(ClientID)
    /// The client table is full.
    case tooManyClients
    /// A relayed request reached a replica that is not the primary of its view.
    case notPrimary(primary: ReplicaID)
    /// A checkpoint for a sequence number that is not a multiple of the checkpoint interval.
    case notACheckpointSequence(SequenceNumber)
    /// A checkpoint at or below the last stable one.
    case staleCheckpoint(SequenceNumber)
    /// An operation larger than `Limits.operationBytesMax`.
    case operationTooLarge(Int)
    /// A normal-case message while this replica is changing views.
    case viewChanging(to: View)
    /// A VIEW-CHANGE or NEW-VIEW for a view this replica has already left or passed.
    case staleView(View, current: View)
    /// A certificate inside a VIEW-CHANGE or NEW-VIEW is malformed (quorum size, matching contents, ...).
    case invalidCertificate(String)
    /// The NEW-VIEW's re-proposals (O) differ from what its VIEW-CHANGEs (V) determine.
    case newViewMismatch(String)
    /// A STATE-CHUNK nobody asked for, or one that does not continue the transfer in progress.
    case unexpectedStateChunk
    /// A FETCH-STATE for a checkpoint state this replica does not hold.
    case stateUnavailable(SequenceNumber)
    /// A RECOVERY-REPLY nobody asked for: this replica is not recovering, or the nonce is another incarnation's.
    case unexpectedRecoveryReply

    /// The case name, without its details: a cheap, stable label for counters and metrics.
    public var kind: String {
        switch self {
        case .unknownReplica: return "unknownReplica"
        case .fromSelf: return "fromSelf"
        case .wrongView: return "wrongView"
        case .outsideWatermarks: return "outsideWatermarks"
        case .notFromPrimary: return "notFromPrimary"
        case .prepareFromPrimary: return "prepareFromPrimary"
        case .batchDigestMismatch: return "batchDigestMismatch"
        case .invalidBatchSize: return "invalidBatchSize"
        case .equivocation: return "equivocation"
        case .duplicate: return "duplicate"
        case .staleTimestamp: return "staleTimestamp"
        case .overloaded: return "overloaded"
        case .batchTooLarge: return "batchTooLarge"
        case .clientRequestQueued: return "clientRequestQueued"
        case .tooManyClients: return "tooManyClients"
        case .notPrimary: return "notPrimary"
        case .notACheckpointSequence: return "notACheckpointSequence"
        case .staleCheckpoint: return "staleCheckpoint"
        case .operationTooLarge: return "operationTooLarge"
        case .viewChanging: return "viewChanging"
        case .staleView: return "staleView"
        case .invalidCertificate: return "invalidCertificate"
        case .newViewMismatch: return "newViewMismatch"
        case .unexpectedStateChunk: return "unexpectedStateChunk"
        case .stateUnavailable: return "stateUnavailable"
        case .unexpectedRecoveryReply: return "unexpectedRecoveryReply"
        }
    }

    public var description: String {
        switch self {
        case .unknownReplica(let id): return "unknown \(id)"
        case .fromSelf: return "message claims to come from this replica"
        case .wrongView(let message, let current): return "message for \(message), replica is in \(current)"
        case .outsideWatermarks(let seq, let low, let high): return "\(seq) outside watermarks (\(low.rawValue), \(high.rawValue)]"
        case .notFromPrimary(let id, let primary): return "\(id) is not the primary (\(primary))"
        case .prepareFromPrimary(let id): return "PREPARE from the primary \(id)"
        case .batchDigestMismatch(let seq): return "batch digest mismatch at \(seq)"
        case .invalidBatchSize(let size): return "invalid batch size \(size)"
        case .equivocation(let id, let seq): return "\(id) sent conflicting messages for \(seq)"
        case .duplicate: return "duplicate message"
        case .staleTimestamp(let client, let ts, let last): return "\(client) request \(ts) older than last executed \(last)"
        case .overloaded: return "request queue full"
        case .batchTooLarge(let bytes): return "batch of about \(bytes) bytes exceeds batchBytesMax"
        case .clientRequestQueued(let client): return "a request of \(client) is already queued"
        case .tooManyClients: return "client table full"
        case .notPrimary(let primary): return "not the primary (\(primary) is)"
        case .notACheckpointSequence(let seq): return "\(seq) is not a checkpoint sequence number"
        case .staleCheckpoint(let seq): return "checkpoint \(seq) at or below the stable checkpoint"
        case .operationTooLarge(let size): return "operation of \(size) bytes is too large"
        case .viewChanging(let target): return "changing to \(target)"
        case .staleView(let message, let current): return "\(message) is stale (replica is at \(current))"
        case .invalidCertificate(let reason): return "invalid certificate: \(reason)"
        case .newViewMismatch(let reason): return "NEW-VIEW does not match its VIEW-CHANGEs: \(reason)"
        case .unexpectedStateChunk: return "unexpected state chunk"
        case .stateUnavailable(let sequence): return "no state for checkpoint \(sequence)"
        case .unexpectedRecoveryReply: return "recovery reply not asked for (not recovering, or another incarnation's nonce)"
        }
    }
}
