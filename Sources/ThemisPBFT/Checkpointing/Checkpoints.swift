import ThemisCore
import ThemisProtocolKit

/// Checkpoints every K sequence numbers, stable at a quorum (2f+1) of matching digests; a stable
/// checkpoint advances the low watermark and truncates the log (PBFT section 4.3).
extension PBFTReplica {
    /// Called after the application executed checkpoint batch `sequence`. The state (application
    /// snapshot and client table) is kept to serve state transfers until a later checkpoint is stable.
    mutating func takeCheckpoint(_ sequence: SequenceNumber, applicationSnapshot: [UInt8], into actions: inout [PBFTAction]) {
        let state = CheckpointState(applicationSnapshot: applicationSnapshot, clientTable: clientTable).encoded()
        let chunks = CheckpointState.chunkDigests(of: state, chunkBytes: limits.stateChunkBytes)
        let digest = CheckpointState.stateDigest(sequence, totalBytes: state.count, chunkDigests: chunks)
        stateTransfer.snapshots[sequence] = state
        stateTransfer.chunkDigests[sequence] = chunks
        let checkpoint = Checkpoint(sequence: sequence, stateDigest: digest, sender: id)
        checkpoints.own[sequence] = digest
        checkpoints.votes[sequence, default: [:]][id] = Authenticated(checkpoint, authenticator: [])
        actions.append(.observe(.checkpointTaken(sequence, digest)))
        // Durable mode: the shell may write the state while the others' CHECKPOINTs arrive.
        if persistsRecords, !recovery.active, sequence > lowWatermark { actions.append(.stageCheckpoint(sequence, state: state)) }
        actions.append(.broadcast(.checkpoint(checkpoint)))
        checkStability(sequence, into: &actions)
    }

    mutating func receiveCheckpoint(_ authenticated: Authenticated<Checkpoint>, into actions: inout [PBFTAction]) throws(Rejection) {
        let checkpoint = authenticated.message
        let sequence = checkpoint.sequence
        guard sequence.rawValue % settings.checkpointInterval == 0, sequence > .zero else {
            throw .notACheckpointSequence(sequence)
        }
        guard sequence > lowWatermark else {
            // The periodic repeats of the others' stable CHECKPOINT complete a short proof, without
            // which this replica's VIEW-CHANGEs would be rejected. (Found by simulator seed 1862.)
            if checkpoints.strengthenStableProof(with: authenticated, quorum: configuration.quorumSize, owner: id) {
                // Durable mode: a restart must not bring the short proof back.
                let record = PBFTRecord.stable(lowWatermark, checkpoints.stableDigest ?? .zero, proof: checkpoints.stableProof)
                persist(record, into: &actions)
                return
            }
            throw .staleCheckpoint(sequence)
        }
        guard sequence <= highWatermark else {
            // Beyond our window: the others are far ahead. Keep the latest per sender (bounded) as
            // evidence for a state transfer.
            if let earlier = stateTransfer.farVotes[checkpoint.sender], earlier.message.sequence >= sequence {
                throw .staleCheckpoint(sequence)
            }
            stateTransfer.farVotes[checkpoint.sender] = authenticated
            considerStateTransfer(into: &actions)
            return
        }
        if let earlier = checkpoints.votes[sequence]?[checkpoint.sender] {
            throw earlier.message.stateDigest == checkpoint.stateDigest ? .duplicate : .equivocation(checkpoint.sender, sequence)
        }
        checkpoints.votes[sequence, default: [:]][checkpoint.sender] = authenticated
        checkStability(sequence, into: &actions)
        considerStateTransfer(into: &actions)
    }

    /// A checkpoint becomes stable once a quorum agrees on a digest and our own state matches it.
    mutating func checkStability(_ sequence: SequenceNumber, into actions: inout [PBFTAction]) {
        guard sequence > lowWatermark,
            let (certified, proof) = checkpoints.certified(at: sequence, quorum: configuration.quorumSize),
            let own = checkpoints.own[sequence]
        else { return }
        guard own == certified else {
            actions.append(.observe(.checkpointMismatch(sequence, replica: id)))
            return
        }
        makeStable(sequence, digest: certified, proof: proof, into: &actions)
    }

    /// Advances h to a stable checkpoint and discards everything at or below it.
    mutating func makeStable(_ sequence: SequenceNumber, digest: Digest, proof: [Authenticated<Checkpoint>],
                             into actions: inout [PBFTAction]) {
        checkpoints.markStable(sequence, digest: digest, proof: proof)
        lowWatermark = sequence
        stableCheckpointUnpersisted = true
        log = log.filter { $0.key > sequence }
        // Keep the stable state (to serve others) and later ones; older states are of no use any more.
        stateTransfer.snapshots = stateTransfer.snapshots.filter { $0.key >= sequence }
        stateTransfer.chunkDigests = stateTransfer.chunkDigests.filter { $0.key >= sequence }
        viewChange.preparedCertificates = viewChange.preparedCertificates.filter { $0.key > sequence }
        viewChange.heldBatches = viewChange.heldBatches.filter { $0.key > sequence }
        actions.append(.observe(.checkpointStable(sequence, digest)))
    }
}
