import ThemisCore

/// Messages of state transfer: a replica that is behind fetches the snapshot of a stable checkpoint in
/// chunks, then the committed batches after it (PBFT TOCS 2002, section 6.2, simplified).

/// FETCH-STATE(s, d, offset): asks for the state of checkpoint s (digest d) from byte `offset` on.
public struct FetchState: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let offset: UInt64
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, offset: UInt64, sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.offset = offset
        self.sender = sender
    }
}

/// STATE-CHUNK: bytes [offset, offset + bytes.count) of the `totalBytes`-long state of checkpoint s.
/// The reply to offset 0 also carries the SHA-256 of every chunk of the state (`chunkDigests`): the
/// checkpoint's state digest covers the total length and that list, so the receiver checks the list
/// against the digest a quorum agreed on, then every chunk as it arrives, never the sender's word.
public struct StateChunk: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let totalBytes: UInt64
    public let offset: UInt64
    public let bytes: [UInt8]
    /// The digests of all chunks, in order, in the reply to offset 0; empty otherwise.
    public let chunkDigests: [Digest]
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, totalBytes: UInt64, offset: UInt64, bytes: [UInt8],
                chunkDigests: [Digest] = [], sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.totalBytes = totalBytes
        self.offset = offset
        self.bytes = bytes
        self.chunkDigests = chunkDigests
        self.sender = sender
    }
}

/// FETCH-BATCHES(from): asks for the committed batches from sequence number `from` on.
public struct FetchBatches: Hashable, Sendable {
    public let from: SequenceNumber
    public let sender: ReplicaID

    public init(from: SequenceNumber, sender: ReplicaID) {
        self.from = from
        self.sender = sender
    }
}

/// COMMITTED-BATCHES: batches the sender has committed, as their pre-prepares. A batch is taken once
/// f+1 replicas (so at least one correct) sent the same one for a sequence number.
public struct CommittedBatches: Hashable, Sendable {
    public let batches: [PrePrepare]
    public let sender: ReplicaID

    public init(batches: [PrePrepare], sender: ReplicaID) {
        self.batches = batches
        self.sender = sender
    }
}
