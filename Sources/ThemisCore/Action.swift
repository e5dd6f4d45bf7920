/// What a protocol core asks its driver (the shell or the simulator) to do.
///
/// Ordering contract: the driver carries out the actions of one call in the order they were returned.
/// - `execute` actions MUST be applied to the application in the order they are emitted, one after the
///   other, and each MUST be answered with `ReplicaCore.executed(_:results:applicationDigest:into:)` in the
///   same order. Execution may lag behind ordering (it runs off the protocol thread).
/// - `send` and `broadcast` may be delivered in any order and may be lost; the protocol tolerates both.
/// - `reply` goes to the client named in the reply, if it is connected; it may be lost (the client
///   retransmits and gets the cached reply).
/// - `observe` has no effect on the protocol; it is for logs and metrics.
/// In-memory mode has nothing to persist; the durable mode will add a `persist` action that MUST be
/// durable before any later `send` of the same call is carried out.
public enum Action<Message: Sendable>: Sendable {
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
    case installState(SequenceNumber, applicationSnapshot: [UInt8])
    /// Something happened that logs and metrics may want to know.
    case observe(Event)
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

    public init(sequence: SequenceNumber, view: View, requests: [Request], checkpoint: Bool) {
        self.sequence = sequence
        self.view = view
        self.requests = requests
        self.checkpoint = checkpoint
    }
}

/// Typed observations from a core (the cores do not log).
public enum Event: Hashable, Sendable {
    case batchProposed(SequenceNumber, requests: Int)
    /// A backup logged the batch of `SequenceNumber` but could not authenticate a request in it; it
    /// prepares only once f other backups have (a faulty client's MAC vector, or a faulty primary).
    case awaitingVouchers(SequenceNumber)
    /// f other backups prepared the batch this replica could not authenticate: it prepares it now.
    case vouchedFor(SequenceNumber)
    case prepared(SequenceNumber)
    case committed(SequenceNumber)
    case executed(SequenceNumber, requests: Int)
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
}
