import ThemisCore
import ThemisProtocolKit

/// After a state transfer (or when a gap stops execution), the committed batches after our state are
/// fetched: a batch is taken once f+1 replicas, so at least one correct, sent the same one.
extension PBFTReplica {
    /// Asks every replica for committed batches after the last one scheduled, if there is evidence that
    /// we are behind (a committed slot beyond a gap, or f+1 checkpoints ahead of us). Rate limited.
    mutating func fetchBatchesIfBehind(force: Bool, into actions: inout [PBFTAction]) {
        let next = lastScheduled.next
        let gap = log[next]?.isCommitted != true && log.contains { $0.key > next && $0.value.isCommitted }
        // A re-proposal accepted by digest whose batch we never received: those who kept it serve it.
        let missing = log.contains { $0.key > lastScheduled && $0.value.prePrepare != nil && $0.value.batch == nil }
        let checkpointsAhead = checkpoints.votes.contains { sequence, votes in
            sequence > lastScheduled && votes.keys.filter { $0 != id }.count >= configuration.weakQuorumSize
        }
        // Messages of a later view we are not in: the others moved on without us (we missed a NEW-VIEW).
        let laterView = !viewChange.future.isEmpty && now >= stateTransfer.lastBatchFetch + settings.requestTimeoutTicks
        // Changing views, we refuse the normal-case messages that would show us a gap: the others may go
        // on ordering without us (a view change no quorum joined). Ask now and then, so that we keep up
        // (found under ThreadSanitizer: a restarted replica alone in a view change stopped short).
        var changingViews = false
        if case .viewChanging = status { changingViews = now >= stateTransfer.lastBatchFetch + settings.requestTimeoutTicks }
        if stateTransfer.catchingUp && now >= stateTransfer.lastBatchFetch + 20 {
            // A round without progress ends the catching up: we have what the others have.
            if lastScheduled == stateTransfer.scheduledAtLastFetch { stateTransfer.catchingUp = false }
        }
        let again = stateTransfer.catchingUp && now >= stateTransfer.lastBatchFetch + 20
        guard force || again || laterView || changingViews || ((gap || checkpointsAhead || missing) && now >= stateTransfer.lastBatchFetch + 10) else { return }
        stateTransfer.lastBatchFetch = now
        stateTransfer.scheduledAtLastFetch = lastScheduled
        actions.append(.broadcast(.fetchBatches(FetchBatches(from: next, sender: id))))
    }

    /// Sends the committed batches we hold from `from` on (in order, as many as one message allows). A
    /// committed slot whose batch we lack ourselves is skipped: the requester may get it from another.
    func serveBatches(_ request: FetchBatches, into actions: inout [PBFTAction]) {
        // The requester is at or below our stable checkpoint: the batches it misses are gone from our log.
        // Our CHECKPOINT vote for it lets a quorum of them prove the checkpoint, and the requester fetch its
        // state (it would otherwise wait for our periodic repeat, every 5 request timeouts). Broadcast, not
        // sent: with MACs, a vote authenticated for one replica only would end up in the requester's stable
        // proof and make its VIEW-CHANGEs unverifiable for everyone else (review finding).
        if request.from <= lowWatermark, let vote = ownStableCheckpointVote {
            actions.append(.broadcast(.checkpoint(vote)))
        }
        var batches: [PrePrepare] = []
        let first = max(request.from, lowWatermark.next)
        // `from` is the peer's word: anything beyond our window is served nothing (and no arithmetic on it).
        guard first <= highWatermark else { return }
        // The requester keeps only batches this close to its own execution (see `receiveCommittedBatches`).
        let last = min(highWatermark, first + UInt64(2 * limits.committedBatchesPerMessageMax))
        // Stay well inside one frame: a reply is cut by size as well as by count.
        var bytes = 0
        var sequence = first
        while batches.count < limits.committedBatchesPerMessageMax, sequence <= last {
            defer { sequence = sequence.next }
            guard let slot = log[sequence], slot.isCommitted, let header = slot.prePrepare?.message, let requests = slot.batch else {
                continue
            }
            bytes += requests.reduce(96) { $0 + $1.operation.count + $1.authenticator.count + 64 }
            if !batches.isEmpty && bytes > limits.committedBatchesBytesMax { break }
            batches.append(header.with(requests))
        }
        guard !batches.isEmpty else { return }
        actions.append(.send(.committedBatches(CommittedBatches(batches: batches, sender: id)), to: request.sender))
    }

    mutating func receiveCommittedBatches(_ message: CommittedBatches, into actions: inout [PBFTAction]) throws(Rejection) {
        guard message.batches.count <= limits.committedBatchesPerMessageMax else { throw .invalidBatchSize(message.batches.count) }
        // Check everything before changing anything: a rejected message leaves the state as it was.
        for prePrepare in message.batches
        where prePrepare.requests.count > limits.batchRequestsMax || Request.batchDigest(prePrepare.requests) != prePrepare.digest {
            throw .batchDigestMismatch(prePrepare.sequence)
        }
        for prePrepare in message.batches {
            let sequence = prePrepare.sequence
            // A batch we accepted by digest: one copy that matches it is enough.
            if sequence > lastScheduled, let header = log[sequence]?.prePrepare?.message, log[sequence]?.batch == nil,
                header.digest == prePrepare.digest
            {
                attachBatch(prePrepare.requests, at: sequence, into: &actions)
                continue
            }
            // Another digest than ours (we may hold a stale one from a view we missed): only f+1 matching
            // copies, that is a batch committed at a correct replica, replace it.
            // Only the next batches are of use; this also bounds what a Byzantine sender can make us keep.
            let horizon = lastScheduled + UInt64(2 * limits.committedBatchesPerMessageMax)
            guard sequence > lastScheduled, sequence <= highWatermark, sequence <= horizon, log[sequence]?.isCommitted != true else { continue }
            stateTransfer.batchVotes[sequence, default: [:]][message.sender] = prePrepare
            let matching = stateTransfer.batchVotes[sequence, default: [:]].values.filter { $0.digest == prePrepare.digest }
            guard matching.count >= configuration.weakQuorumSize else { continue }
            // Committed at a correct replica: execute it. It is marked prepared too, so that no prepared
            // certificate is ever built from this unauthenticated copy.
            var slot = log[sequence] ?? Slot()
            slot.prePrepare = Authenticated(prePrepare.header, authenticator: [])
            slot.batch = prePrepare.requests
            viewChange.hold(prePrepare.requests, digest: prePrepare.digest, at: sequence)
            slot.isPrepared = true
            slot.isCommitted = true
            log[sequence] = slot
            persist(.committedBatch(prePrepare), into: &actions)
            actions.append(.observe(.batchFetched(sequence)))
        }
        scheduleExecution(into: &actions)
        stateTransfer.batchVotes = stateTransfer.batchVotes.filter { $0.key > lastScheduled }
        fetchBatchesIfBehind(force: false, into: &actions)
    }
}
