import ThemisCore
import ThemisProtocolKit

/// CHECKPOINT messages per sequence number, our own digests, and the last stable checkpoint with its proof.
struct CheckpointTracker: Sendable {
    /// Votes per checkpoint sequence number, by sender (our own included, with an empty authenticator).
    var votes: [SequenceNumber: [ReplicaID: Authenticated<Checkpoint>]] = [:]
    /// Our own state digest per checkpoint sequence number that we have taken but is not yet stable.
    var own: [SequenceNumber: Digest] = [:]
    private(set) var stableSequence = SequenceNumber.zero
    private(set) var stableDigest: Digest?
    /// A quorum of matching CHECKPOINT messages for the stable checkpoint (empty for sequence 0).
    private(set) var stableProof: [Authenticated<Checkpoint>] = []

    /// The digest with at least `quorum` matching votes at `sequence`, and those votes, if any.
    func certified(at sequence: SequenceNumber, quorum: Int) -> (Digest, [Authenticated<Checkpoint>])? {
        guard let byReplica = votes[sequence] else { return nil }
        var tally: [Digest: [Authenticated<Checkpoint>]] = [:]
        for vote in byReplica.values {
            tally[vote.message.stateDigest, default: []].append(vote)
        }
        for (digest, matching) in tally where matching.count >= quorum {
            return (digest, matching.sorted { $0.message.sender < $1.message.sender })
        }
        return nil
    }

    /// Adds a matching CHECKPOINT to a stable proof that is short of a quorum (one adopted from a
    /// NEW-VIEW or a state transfer can be, when the entries a VIEW-CHANGE only implied cannot be
    /// forwarded). - Returns: false if the proof did not need or take it.
    mutating func strengthenStableProof(with vote: Authenticated<Checkpoint>, quorum: Int, owner: ReplicaID) -> Bool {
        guard vote.message.sequence == stableSequence, vote.message.stateDigest == stableDigest, !vote.authenticator.isEmpty else {
            return false
        }
        // Another replica's entry with an empty authenticator (implied by its VIEW-CHANGE) convinces nobody
        // when we forward it: it only makes our own VIEW-CHANGEs forged. Drop it; the vote may replace it.
        stableProof.removeAll { $0.authenticator.isEmpty && $0.message.sender != owner }
        guard stableProof.count < quorum, !stableProof.contains(where: { $0.message.sender == vote.message.sender }) else {
            return false
        }
        stableProof.append(vote)
        stableProof.sort { $0.message.sender < $1.message.sender }
        return true
    }

    /// Makes `sequence` the stable checkpoint and forgets everything at or below it.
    mutating func markStable(_ sequence: SequenceNumber, digest: Digest, proof: [Authenticated<Checkpoint>]) {
        stableSequence = sequence
        stableDigest = digest
        stableProof = proof
        votes = votes.filter { $0.key > sequence }
        own = own.filter { $0.key > sequence }
    }
}
