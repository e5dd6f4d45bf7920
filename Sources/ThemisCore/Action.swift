/// What a protocol core asks its driver (the shell or the simulator) to do. `Message` and `Event` are
/// the protocol plug-in's types.
///
/// Ordering contract: the driver carries out the actions of one call in the order they were returned.
/// - `execute` actions MUST be applied to the application in the order they are emitted, one after the
///   other, and each MUST be answered with `ReplicaCore.executed(_:results:applicationDigest:into:)` in the
///   same order. Execution may lag behind ordering (it runs off the protocol thread).
/// - `send` and `broadcast` may be delivered in any order and may be lost; the protocol tolerates both.
/// - `reply` goes to the client named in the reply, if it is connected; it may be lost (the client
///   retransmits and gets the cached reply).
/// - `observe` has no effect on the protocol; it is for logs and metrics.
/// - `persist` and `persistCheckpoint` (durable mode; in-memory mode ignores them): every record a call
///   appends MUST be durable before any `send`, `broadcast` or `reply` of that call (or of a later one)
///   leaves the replica: a replica never sends a vote it would forget in a crash. A driver may group the
///   records of several calls under one sync as long as it holds their sends back until then.
///   `persistCheckpoint` saves the state of a stable checkpoint and starts a new log: the records that
///   follow it restate everything the core must not forget, so what came before may be deleted.
/// - `stageCheckpoint` (durable mode) is a hint with no ordering: a driver may write the state ahead, off the
///   way of any frame, so that `persistCheckpoint` of the same sequence number finds it on disk; ignoring it is
///   always correct.
public enum Action<Message: Sendable, Event: Sendable, Record: Sendable>: Sendable {
    /// Send to one replica.
    case send(Message, to: ReplicaID)
    /// Send to every replica except this one.
    case broadcast(Message)
    /// Authenticate and send to the reply's client.
    case reply(Reply)
    /// Apply a committed batch to the application (after every earlier one).
    case execute(ExecutionBatch)
    /// Replace the application's state with a snapshot fetched by state transfer, in order with
    /// `execute` (every later `execute` applies on top of it). The snapshot matches a quorum-agreed digest.
    /// PBFT also installs its own stable checkpoint again to undo a tentative batch that did not commit
    /// (the sequence number may then be lower than that of batches executed before).
    case installState(SequenceNumber, applicationSnapshot: [UInt8])
    /// Something happened that logs and metrics may want to know (the protocol's own event type).
    case observe(Event)
    /// Append a record to the write-ahead log (see the ordering contract above).
    case persist(Record)
    /// Save the encoded state of stable checkpoint `SequenceNumber` and start a new log segment.
    case persistCheckpoint(SequenceNumber, state: [UInt8])
    /// The encoded state of a checkpoint this replica took, not stable yet: what `persistCheckpoint` will
    /// save if it becomes stable with this state (see the ordering contract: a hint).
    case stageCheckpoint(SequenceNumber, state: [UInt8])
}

/// Why a core cannot be restored from its write-ahead log.
public enum RestoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The protocol has no durable mode (yet).
    case unsupported(protocolName: String)
    /// The snapshot of the stable checkpoint does not match the digest its record names.
    case snapshotMismatch(SequenceNumber)
    /// A record that this replica cannot have written (another cluster's log, or a bug).
    case invalidRecord(String)

    public var description: String {
        switch self {
        case .unsupported(let name): return "\(name) has no durable mode yet (run it without --data-dir)"
        case .snapshotMismatch(let sequence):
            return "the snapshot of checkpoint \(sequence.rawValue) does not match the digest its log record names"
        case .invalidRecord(let problem): return "the write-ahead log holds a record this replica cannot have written: \(problem)"
        }
    }
}

/// A committed batch to apply. `requests` holds only the requests that have not been executed before
/// (exactly-once); it may be empty (a batch of duplicates, or a null request).
public struct ExecutionBatch: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let view: View
    public let requests: [Request]
    /// If true, the driver MUST take a snapshot of the application right after this batch and
    /// report its digest in `executed(...)`: this sequence number is a checkpoint.
    public let checkpoint: Bool
    /// Executed before it committed (PBFT's tentative execution): the core may later undo it with an
    /// `installState` of an earlier checkpoint. Drivers execute it like any other batch; checkers count it
    /// as agreed only once the core reports it committed.
    public let tentative: Bool

    public init(sequence: SequenceNumber, view: View, requests: [Request], checkpoint: Bool, tentative: Bool = false) {
        self.sequence = sequence
        self.view = view
        self.requests = requests
        self.checkpoint = checkpoint
        self.tentative = tentative
    }
}
