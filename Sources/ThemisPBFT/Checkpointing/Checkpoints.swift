import ThemisCore

/// Checkpoints every K sequence numbers, stable at a quorum (2f+1) of matching digests; a stable
/// checkpoint advances the low watermark and truncates the log (PBFT section 4.3).
extension PBFTReplica {
    /// The state digest binds the sequence number, the application's snapshot digest and the client
    /// table (last timestamps and cached replies), which the framework keeps on the application's behalf.
    func stateDigest(_ sequence: SequenceNumber, applicationDigest: Digest) -> Digest {
        var builder = DigestBuilder(domain: "themis.checkpoint.v1")
        builder.append(sequence.rawValue)
        builder.append(applicationDigest)
        builder.append(clientTable.digest())
        return builder.finish()
    }

    /// Called after the application executed checkpoint batch `sequence`.
    mutating func takeCheckpoint(_ sequence: SequenceNumber, applicationDigest: Digest, into actions: inout [Action<PBFTMessage>]) {
        let digest = stateDigest(sequence, applicationDigest: applicationDigest)
        checkpoints.own[sequence] = digest
        checkpoints.votes[sequence, default: [:]][id] = digest
        actions.append(.observe(.checkpointTaken(sequence, digest)))
        actions.append(.broadcast(.checkpoint(Checkpoint(sequence: sequence, stateDigest: digest, sender: id))))
        checkStability(sequence, into: &actions)
    }

    mutating func receiveCheckpoint(_ checkpoint: Checkpoint, into actions: inout [Action<PBFTMessage>]) throws(Rejection) {
        let sequence = checkpoint.sequence
        guard sequence.rawValue % settings.checkpointInterval == 0, sequence > .zero else {
            throw .notACheckpointSequence(sequence)
        }
        guard sequence > lowWatermark else { throw .staleCheckpoint(sequence) }
        // Bound memory: votes are kept for the window only (state transfer handles replicas further behind).
        guard sequence <= highWatermark else { throw .outsideWatermarks(sequence, low: lowWatermark, high: highWatermark) }
        if let earlier = checkpoints.votes[sequence]?[checkpoint.sender] {
            throw earlier == checkpoint.stateDigest ? .duplicate : .equivocation(checkpoint.sender, sequence)
        }
        checkpoints.votes[sequence, default: [:]][checkpoint.sender] = checkpoint.stateDigest
        checkStability(sequence, into: &actions)
    }

    /// A checkpoint becomes stable once a quorum agrees on a digest and our own state matches it.
    mutating func checkStability(_ sequence: SequenceNumber, into actions: inout [Action<PBFTMessage>]) {
        guard sequence > lowWatermark,
            let certified = checkpoints.certifiedDigest(at: sequence, quorum: configuration.quorumSize),
            let own = checkpoints.own[sequence]
        else { return }
        guard own == certified else {
            actions.append(.observe(.checkpointMismatch(sequence, replica: id)))
            return
        }
        checkpoints.markStable(sequence, digest: certified)
        lowWatermark = sequence
        log = log.filter { $0.key > sequence }
        actions.append(.observe(.checkpointStable(sequence, certified)))
    }
}
