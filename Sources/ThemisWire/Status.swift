import ThemisCore

/// A client asks a replica for its status; answered directly, not ordered.
public struct StatusQuery: Hashable, Sendable {
    /// Echoed in the report, so that the client can match the answer to its question.
    public let nonce: UInt64

    public init(nonce: UInt64) {
        self.nonce = nonce
    }
}

/// One replica's view of its own progress. Unauthenticated and unordered: for monitoring only,
/// never for a decision of the protocol.
public struct StatusReport: Hashable, Sendable {
    /// The query's nonce.
    public let nonce: UInt64
    public let replica: ReplicaID
    public let view: View
    public let lastExecuted: SequenceNumber
    public let lastStableCheckpoint: SequenceNumber
    /// The application's state digest after `lastExecuted`.
    public let applicationDigest: Digest
    /// How many other replicas this replica has an authenticated link with.
    public let connectedReplicas: UInt32
    /// Batches and requests this replica executed since it started (batch size mean = requests / batches).
    public let batchesExecuted: UInt64
    public let requestsExecuted: UInt64
    /// The replica process's peak resident set size (VmHWM) in bytes; 0 where unknown.
    public let peakResidentBytes: UInt64

    public init(
        nonce: UInt64, replica: ReplicaID, view: View, lastExecuted: SequenceNumber,
        lastStableCheckpoint: SequenceNumber, applicationDigest: Digest, connectedReplicas: UInt32 = 0,
        batchesExecuted: UInt64 = 0, requestsExecuted: UInt64 = 0, peakResidentBytes: UInt64 = 0
    ) {
        self.batchesExecuted = batchesExecuted
        self.requestsExecuted = requestsExecuted
        self.peakResidentBytes = peakResidentBytes
        self.nonce = nonce
        self.replica = replica
        self.view = view
        self.lastExecuted = lastExecuted
        self.lastStableCheckpoint = lastStableCheckpoint
        self.applicationDigest = applicationDigest
        self.connectedReplicas = connectedReplicas
    }
}
