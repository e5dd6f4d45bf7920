import ThemisCore

/// CHECKPOINT messages per sequence number, our own digests, and the last stable checkpoint.
struct CheckpointTracker: Sendable {
    /// Votes per checkpoint sequence number, by sender (our own included).
    var votes: [SequenceNumber: [ReplicaID: Digest]] = [:]
    /// Our own state digest per checkpoint sequence number that we have taken but is not yet stable.
    var own: [SequenceNumber: Digest] = [:]
    private(set) var stableSequence = SequenceNumber.zero
    private(set) var stableDigest: Digest?

    /// The digest with at least `quorum` matching votes at `sequence`, if any.
    func certifiedDigest(at sequence: SequenceNumber, quorum: Int) -> Digest? {
        guard let byReplica = votes[sequence] else { return nil }
        var tally: [Digest: Int] = [:]
        for digest in byReplica.values {
            tally[digest, default: 0] += 1
            if tally[digest, default: 0] >= quorum { return digest }
        }
        return nil
    }

    /// Makes `sequence` the stable checkpoint and forgets everything at or below it.
    mutating func markStable(_ sequence: SequenceNumber, digest: Digest) {
        stableSequence = sequence
        stableDigest = digest
        votes = votes.filter { $0.key > sequence }
        own = own.filter { $0.key > sequence }
    }
}
