import ThemisCore
import ThemisProtocolKit

/// Fetching a checkpoint's state in chunks from one peer at a time, checking it against the digest
/// f+1 replicas (or a NEW-VIEW's quorum proof) vouch for, and installing it.
extension PBFTReplica {
    /// Starts a transfer when a quorum agrees on a checkpoint at least one interval beyond what this
    /// replica executed (so a replica that lags a little just keeps ordering). A quorum, not f+1: the
    /// votes become this replica's stable checkpoint proof, which its VIEW-CHANGEs must be able to show.
    mutating func considerStateTransfer(into actions: inout [PBFTAction]) {
        guard stateTransfer.fetch == nil, executing.isEmpty else { return }
        // One vote per sender and checkpoint: a sender's far vote and its later repeat inside the window
        // are the same vote (counting both let f replicas look like a quorum; issue 9, finding 8).
        var tally: [SequenceNumber: [Digest: [ReplicaID: Authenticated<Checkpoint>]]] = [:]
        let votes = Array(stateTransfer.farVotes.values) + checkpoints.votes.values.flatMap(\.values)
        for vote in votes where vote.message.sender != id {
            tally[vote.message.sequence, default: [:]][vote.message.stateDigest, default: [:]][vote.message.sender] = vote
        }
        let threshold = lastScheduled + settings.checkpointInterval
        var best: (SequenceNumber, Digest, [Authenticated<Checkpoint>])?
        for (sequence, byDigest) in tally where sequence >= threshold && sequence > lastScheduled {
            for (digest, matching) in byDigest where matching.count >= configuration.quorumSize {
                if best == nil || sequence > best!.0 { best = (sequence, digest, matching.values.sorted { $0.message.sender < $1.message.sender }) }
            }
        }
        if let (sequence, digest, proof) = best {
            startStateTransfer(sequence, digest: digest, proof: proof, into: &actions)
        }
    }

    mutating func startStateTransfer(_ sequence: SequenceNumber, digest: Digest, proof: [Authenticated<Checkpoint>],
                                     into actions: inout [PBFTAction]) {
        let peers = Set(proof.map(\.message.sender)).subtracting([id]).sorted()
        guard !peers.isEmpty else { return }
        stateTransfer.fetch = StateTransferState.Fetch(sequence: sequence, stateDigest: digest, proof: proof, peers: peers,
                                                       deadline: now + settings.requestTimeoutTicks, peerStarted: now)
        actions.append(.observe(.stateTransferStarted(sequence, from: peers[0])))
        requestChunk(into: &actions)
    }

    mutating func requestChunk(into actions: inout [PBFTAction]) {
        guard let fetch = stateTransfer.fetch else { return }
        let request = FetchState(sequence: fetch.sequence, stateDigest: fetch.stateDigest,
                                 offset: UInt64(fetch.received.count), sender: id)
        actions.append(.send(.fetchState(request), to: fetch.peer))
        stateTransfer.fetch?.deadline = now + settings.requestTimeoutTicks
    }

    /// A silent or lying peer: go on with the next one, from the verified prefix.
    mutating func switchPeer(into actions: inout [PBFTAction]) {
        guard var fetch = stateTransfer.fetch else { return }
        fetch.peerIndex += 1
        fetch.peerStarted = now
        stateTransfer.fetch = fetch
        requestChunk(into: &actions)
    }

    /// Our CHECKPOINT for the stable checkpoint, if we hold one above 0 whose sequence number is the low
    /// watermark (a state transfer that finishes below a checkpoint adopted from a NEW-VIEW leaves the two
    /// apart: then we vouch for nothing rather than pair one sequence number with another's digest).
    var ownStableCheckpointVote: Checkpoint? {
        guard lowWatermark > .zero, checkpoints.stableSequence == lowWatermark, let digest = checkpoints.stableDigest else { return nil }
        return Checkpoint(sequence: lowWatermark, stateDigest: digest, sender: id)
    }

    mutating func stateTransferTick(into actions: inout [PBFTAction]) {
        // Now and then, repeat our stable CHECKPOINT: a replica that restarted after it was sent learns
        // from it how far behind it is, even if no new checkpoint is reached for a while.
        if now % (settings.requestTimeoutTicks * 5) == 0, let vote = ownStableCheckpointVote {
            actions.append(.broadcast(.checkpoint(vote)))
        }
        // A fetch of a state the cluster has moved past (a later checkpoint is pending, adopted from a NEW-VIEW,
        // or every vouching peer was asked twice in vain: they discarded it at their next stable checkpoint) is
        // abandoned for the later one (found by the rolling-restart scenario: a replica fetched checkpoint 24
        // from peers at 104 forever).
        if let fetch = stateTransfer.fetch,
           (stateTransfer.pending.map { $0.sequence > fetch.sequence } ?? false) || fetch.peerIndex >= 2 * fetch.peers.count {
            stateTransfer.fetch = nil
            actions.append(.observe(.stateTransferRejected(fetch.sequence, from: fetch.peer)))
        }
        if let fetch = stateTransfer.fetch {
            // The budget grows with the number of chunks still missing, known from the verified chunk list
            // (a peer can no longer claim a huge state to buy itself time).
            let missing = UInt64((fetch.chunkDigests?.count ?? 1) - fetch.received.count / max(1, limits.stateChunkBytes))
            let budget = settings.requestTimeoutTicks * (4 + 2 * missing)
            if now >= fetch.deadline || now >= fetch.peerStarted + budget { switchPeer(into: &actions) }
            return
        }
        if let pending = stateTransfer.pending, executing.isEmpty {
            stateTransfer.pending = nil
            if pending.sequence > lastScheduled {
                startStateTransfer(pending.sequence, digest: pending.digest, proof: pending.proof, into: &actions)
                return
            }
        }
        considerStateTransfer(into: &actions)
        fetchBatchesIfBehind(force: false, into: &actions)
    }

    mutating func receiveStateChunk(_ chunk: StateChunk, into actions: inout [PBFTAction]) throws(Rejection) {
        guard var fetch = stateTransfer.fetch, chunk.sequence == fetch.sequence, chunk.stateDigest == fetch.stateDigest,
            chunk.sender == fetch.peer, chunk.offset == UInt64(fetch.received.count)
        else { throw .unexpectedStateChunk }
        // The chunk list first: it must hash, with the total length, to the digest a quorum agreed on.
        if fetch.chunkDigests == nil {
            let chunkBytes = UInt64(max(1, limits.stateChunkBytes))
            // The peer's total first: no arithmetic on it before it is known to be within stateBytesMax.
            guard chunk.totalBytes <= UInt64(limits.stateBytesMax) else { return rejectChunk(from: chunk.sender, into: &actions) }
            let expected = chunk.totalBytes == 0 ? 1 : (chunk.totalBytes + chunkBytes - 1) / chunkBytes
            guard UInt64(chunk.chunkDigests.count) == expected,
                CheckpointState.stateDigest(fetch.sequence, totalBytes: Int(chunk.totalBytes), chunkDigests: chunk.chunkDigests) == fetch.stateDigest
            else { return rejectChunk(from: chunk.sender, into: &actions) }
            fetch.chunkDigests = chunk.chunkDigests
            fetch.totalBytes = chunk.totalBytes
        }
        guard let chunkDigests = fetch.chunkDigests, let totalBytes = fetch.totalBytes else { return }
        // Then every chunk: exactly the expected length, and its digest (a lying peer is caught here, at once).
        let index = fetch.received.count / max(1, limits.stateChunkBytes)
        let length = min(UInt64(limits.stateChunkBytes), totalBytes - chunk.offset)
        guard index < chunkDigests.count, UInt64(chunk.bytes.count) == length, Digest.of(chunk.bytes) == chunkDigests[index] else {
            stateTransfer.fetch = fetch  // the verified list stays; the next peer resumes at this chunk
            return rejectChunk(from: chunk.sender, into: &actions)
        }
        fetch.received += chunk.bytes
        stateTransfer.fetch = fetch
        guard UInt64(fetch.received.count) == totalBytes else { return requestChunk(into: &actions) }
        guard let state = CheckpointState.decode(fetch.received, replica: id, view: view, limits: limits) else {
            // Every chunk matched the agreed digest, yet the state does not parse: the quorum's state is one
            // this replica cannot read (a version or limit mismatch). Start over with the next peer.
            stateTransfer.fetch?.received = []
            return rejectChunk(from: chunk.sender, into: &actions)
        }
        install(state, from: fetch, into: &actions)
    }

    /// A peer sent a chunk list or a chunk that does not match the agreed digest: ask the next peer.
    private mutating func rejectChunk(from peer: ReplicaID, into actions: inout [PBFTAction]) {
        guard let fetch = stateTransfer.fetch else { return }
        actions.append(.observe(.stateTransferRejected(fetch.sequence, from: peer)))
        switchPeer(into: &actions)
    }

    /// Replaces our state with the fetched one; execution continues on top of it.
    mutating func install(_ state: CheckpointState, from fetch: StateTransferState.Fetch, into actions: inout [PBFTAction]) {
        let sequence = fetch.sequence
        precondition(executing.isEmpty && sequence > lastScheduled, "state installed over pending execution")
        clientTable = state.clientTable
        forgetTentative()
        actions.append(.installState(sequence, applicationSnapshot: state.applicationSnapshot))
        lastScheduled = sequence
        lastExecuted = sequence
        lastProposed = max(lastProposed, sequence)
        stateTransfer.fetch = nil
        stateTransfer.snapshots[sequence] = fetch.received
        stateTransfer.chunkDigests[sequence] = fetch.chunkDigests
        // Durable mode: the state is here now; save it and start a new segment (see `persistStableCheckpoint`).
        stableCheckpointUnpersisted = true
        stateTransfer.farVotes = stateTransfer.farVotes.filter { $0.value.message.sequence > sequence }
        // We now hold this state: our own (implied) vote joins the proof, which a NEW-VIEW may have
        // handed us one entry short (the sender's own entry cannot be forwarded).
        let own = Authenticated(Checkpoint(sequence: sequence, stateDigest: fetch.stateDigest, sender: id), authenticator: [])
        // Entries of others with an empty authenticator cannot be forwarded (our VIEW-CHANGEs would be forged).
        let proof = fetch.proof.filter { $0.message.sender != id && !$0.authenticator.isEmpty } + [own]
        if sequence > lowWatermark {
            makeStable(sequence, digest: fetch.stateDigest, proof: proof, into: &actions)
        } else {
            checkpoints.markStable(sequence, digest: fetch.stateDigest, proof: proof)
            log = log.filter { $0.key > sequence }
        }
        let executed = viewChange.waiting.values.filter { $0.timestamp <= clientTable.lastExecuted($0.client) }
        noteExecuted(executed)
        actions.append(.observe(.stateTransferFinished(sequence)))
        stateTransfer.catchingUp = true
        fetchBatchesIfBehind(force: true, into: &actions)
        scheduleExecution(into: &actions)
    }

    /// Serves a chunk of one of our checkpoint states.
    mutating func serveState(_ request: FetchState, into actions: inout [PBFTAction]) throws(Rejection) {
        guard let state = stateTransfer.snapshots[request.sequence],
            checkpoints.own[request.sequence] == request.stateDigest
                || (checkpoints.stableSequence == request.sequence && checkpoints.stableDigest == request.stateDigest),
            request.offset <= UInt64(state.count)
        else { throw .stateUnavailable(request.sequence) }
        let start = Int(request.offset)
        let end = min(state.count, start + limits.stateChunkBytes)
        var chunkDigests: [Digest] = []
        if request.offset == 0 {
            chunkDigests = stateTransfer.chunkDigests[request.sequence] ?? CheckpointState.chunkDigests(of: state, chunkBytes: limits.stateChunkBytes)
        }
        let chunk = StateChunk(sequence: request.sequence, stateDigest: request.stateDigest, totalBytes: UInt64(state.count),
                               offset: request.offset, bytes: Array(state[start..<end]), chunkDigests: chunkDigests, sender: id)
        actions.append(.send(.stateChunk(chunk), to: request.sender))
    }

    /// Answers a FETCH-STATE or FETCH-BATCHES if `peer` has budget left (`Limits.fetchRepliesBurst` at
    /// once, one more per tick); otherwise keeps it (the latest per peer) for `serveDeferredFetches`.
    mutating func serveFetch(_ message: PBFTMessage, from peer: ReplicaID, into actions: inout [PBFTAction]) throws(Rejection) {
        guard spendFetchBudget(of: peer) else {
            stateTransfer.deferredFetches[peer] = message
            return
        }
        switch message {
        case .fetchState(let request): try serveState(request, into: &actions)
        case .fetchBatches(let request): serveBatches(request, into: &actions)
        default: break
        }
    }

    /// Each tick: answers the kept fetches whose peers have budget again.
    mutating func serveDeferredFetches(into actions: inout [PBFTAction]) {
        guard !stateTransfer.deferredFetches.isEmpty else { return }
        for (peer, message) in stateTransfer.deferredFetches.sorted(by: { $0.key < $1.key }) {
            stateTransfer.deferredFetches[peer] = nil
            try? serveFetch(message, from: peer, into: &actions)
        }
    }

    mutating func spendFetchBudget(of peer: ReplicaID) -> Bool {
        var budget = stateTransfer.fetchBudget[peer] ?? (limits.fetchRepliesBurst, now)
        let refill = now - min(now, budget.tick)
        budget.replies = Int(min(UInt64(limits.fetchRepliesBurst), UInt64(max(0, budget.replies)) + refill))
        budget.tick = now
        let granted = budget.replies > 0
        if granted { budget.replies -= 1 }
        stateTransfer.fetchBudget[peer] = budget
        return granted
    }
}
