import ThemisCore
import ThemisProtocolKit

/// The recovery protocol of a replica that lost its state: in-memory mode (every start may be a restart),
/// an empty or deleted data directory. Adapted from PBFT proactive recovery's high-watermark estimate
/// (Castro & Liskov, TOCS 2002, section 4.3.2).
///
/// The danger: a replica that forgot its votes may vote again, differently, for a sequence number it voted on
/// before its restart, or leave a batch it prepared out of its VIEW-CHANGE. With f faulty replicas besides, two
/// conflicting certificates become possible. So the replica takes no part in agreement (no PRE-PREPARE,
/// PREPARE, COMMIT, VIEW-CHANGE or NEW-VIEW; it still receives, executes what others commit, takes and
/// serves checkpoints, and answers fetches) until a checkpoint at or above every sequence number it could have
/// voted on is stable here: every vote it forgot is then below its low watermark and can matter no more.
///
/// The estimate. Before its restart the replica voted only within its window (c, c + L], c its stable
/// checkpoint then. It asks every replica (RECOVERY-QUERY with a fresh nonce) and waits for replies from 2f
/// others (with itself, a quorum), each with the sender's last executed sequence number e and its stable
/// checkpoint s with the proof (2f+1 CHECKPOINTs). The recovering replica counts as one of the f faulty
/// replicas until it is done (as in PBFT-PR), so at most f-1 others are faulty and 2f of them answer. c was
/// stable, so 2f+1 replicas sent CHECKPOINT(c), at least 2f of them others; those 2f and the 2f repliers,
/// among the 3f others, share at least f replicas, so at least one correct: it executed c, so its e >= c. A correct replica never executes beyond s + L, so min(e, s + L) loses nothing of a correct
/// reply and keeps a faulty one from claiming more than the cluster reached (s is proven). Hence
/// c <= max over the replies of min(e, s + L) =: c', and the target is c' + L, rounded up to a checkpoint.
///
/// The cluster's first start: every replica starts empty and asks. If all 2f replies have no history
/// (nothing executed, stable checkpoint 0, view 0), the target is 0 and the replica votes at once. Within the
/// fault model (at most f replicas faulty or recovering), a reply of a correct replica that executed
/// anything would be among them if the asker had voted on an executed batch before; what remains is a vote
/// for a batch that nobody executed yet, which this rule trusts to have been delivered (or lost) before the
/// restart was answered: documented in the README's known limits, and the simulator keeps charging a
/// replica that recovered this way to the fault budget.
///
/// Liveness: the recovering replica counts as faulty while it recovers. An idle cluster would never reach
/// the target, so the recovering replica's later queries carry it, and a primary with nothing to order fills
/// its window with null batches up to the checkpoint at or above it.
struct RecoveryState: Sendable {
    /// Recovering: no votes.
    var active = false
    /// This incarnation's nonce (`CoreEnvironment.incarnation`).
    var nonce: UInt64 = 0
    var replies: [ReplicaID: RecoveryReply] = [:]
    /// The stable checkpoint to reach, once a quorum answered.
    var target: SequenceNumber?
    /// The target came from the first-start rule (every reply without history).
    var fromBlankQuorum = false
    /// Over through the estimate (not the first-start rule).
    var completedByEstimate = false
    /// The tick of the next RECOVERY-QUERY; whether `recoveryStarted` was observed.
    var nextQuery: UInt64 = 0
    var announced = false
    /// Durable mode: the `recovered` record is still to be written (after the restatement, in `flush`).
    var completionUnpersisted = false
    /// As the primary: the highest target a recovering replica announced; with nothing else to order, the
    /// primary proposes null batches up to the checkpoint at or above it.
    var fillTarget = SequenceNumber.zero
    /// See `PBFTReplica.knownFirstStart`.
    var knownFirstStart = false
    /// As a backup: execution progress while a recovering replica waits for the fill, and when to suspect a
    /// primary that does not fill (it may be the recovering replica itself, which cannot).
    var fillMark = SequenceNumber.zero
    var fillDeadline: UInt64?
}

extension PBFTReplica {
    /// True while this replica recovers its right to vote (see `RecoveryState`).
    public var isRecovering: Bool { recovery.active }
    /// The stable checkpoint this recovering replica waits for, once a quorum answered.
    public var recoveryTarget: SequenceNumber? { recovery.target }
    /// The nonce of this incarnation's RECOVERY-QUERYs (set from `CoreEnvironment.incarnation` when made).
    package var recoveryNonce: UInt64 {
        get { recovery.nonce }
        set { recovery.nonce = newValue }
    }
    /// Known to be the cluster's first start (the simulator's initial replicas; a process cannot know): an
    /// empty log in `restore` then means nothing was ever sent, and no recovery runs.
    package var knownFirstStart: Bool {
        get { recovery.knownFirstStart }
        set { recovery.knownFirstStart = newValue }
    }
    /// The last recovery ended through the estimate (so the replica cannot contradict what it said before).
    public var recoveredByEstimate: Bool { !recovery.active && recovery.completedByEstimate }

    /// Starts the recovery protocol on a freshly made replica (in-memory mode; durable mode starts it from
    /// `restore` when the log is empty or ends in a recovery).
    public mutating func beginRecovery() {
        precondition(lastScheduled == .zero && log.isEmpty, "beginRecovery is for a freshly made replica")
        recovery.active = true
        recovery.replies = [:]
        recovery.target = nil
        recovery.nextQuery = now + 1
    }

    /// Each tick while recovering: ask (often while no target is known, every timeout after, so that the primary
    /// keeps filling an idle window), and finish once the target is stable here.
    mutating func recoveryTick(into actions: inout [PBFTAction]) {
        guard recovery.active else { return }
        completeRecoveryIfDone(into: &actions)
        guard recovery.active, now >= recovery.nextQuery else { return }
        if !recovery.announced {
            recovery.announced = true
            actions.append(.observe(.recoveryStarted))
        }
        let interval = recovery.target == nil ? settings.requestTimeoutTicks / 4 : settings.requestTimeoutTicks
        recovery.nextQuery = now + max(1, interval)
        actions.append(.broadcast(.recoveryQuery(RecoveryQuery(nonce: recovery.nonce, target: recovery.target ?? .zero, view: view, sender: id))))
    }

    /// Any replica answers (within the fetch budget; the asker repeats). The primary notes the target to fill
    /// towards; a target beyond what a correct replica can ask for (two windows and a checkpoint interval
    /// above our stable checkpoint) is not filled towards.
    mutating func receiveRecoveryQuery(_ query: RecoveryQuery, into actions: inout [PBFTAction]) {
        let reach = lowWatermark.rawValue.addingReportingOverflow(2 * settings.watermarkWindow + settings.checkpointInterval)
        if query.target > recovery.fillTarget, !reach.overflow, query.target.rawValue <= reach.partialValue {
            recovery.fillTarget = query.target
        }
        if query.view < view { relayNewView(to: query.sender, into: &actions) }
        guard spendFetchBudget(of: query.sender) else { return }
        let reply = RecoveryReply(
            nonce: query.nonce, view: targetView, lastExecuted: lastExecuted,
            stableCheckpoint: checkpoints.stableSequence, stableDigest: checkpoints.stableDigest ?? .zero,
            checkpointProof: checkpoints.stableSequence == .zero ? [] : checkpoints.stableProof, sender: id)
        actions.append(.send(.recoveryReply(reply), to: query.sender))
    }

    mutating func receiveRecoveryReply(_ reply: RecoveryReply, into actions: inout [PBFTAction]) throws(Rejection) {
        guard recovery.active, recovery.target == nil, reply.nonce == recovery.nonce else { throw .unexpectedRecoveryReply }
        // An unproven stable checkpoint could hide progress (a short proof) or claim some that never happened:
        // such a reply does not count (a correct sender's proof completes, and the query is repeated).
        try validateCheckpointProof(reply.stableCheckpoint, digest: reply.stableDigest, proof: reply.checkpointProof)
        recovery.replies[reply.sender] = reply
        guard recovery.replies.count >= configuration.quorumSize - 1 else { return }
        let replies = recovery.replies.values
        let blank = replies.allSatisfy(\.isBlank)
        var target = SequenceNumber.zero
        if !blank {
            let window = settings.watermarkWindow
            // s is proven (so s + L cannot overflow in a cluster that ran for less than forever).
            let executed = replies.map { min($0.lastExecuted.rawValue, $0.stableCheckpoint.rawValue &+ window) }.max() ?? 0
            let bound = executed + window
            let interval = settings.checkpointInterval
            target = SequenceNumber((bound + interval - 1) / interval * interval)
        }
        recovery.target = target
        recovery.fromBlankQuorum = blank
        recovery.replies = [:]
        recovery.nextQuery = now  // tell the primary at once
        actions.append(.observe(.recoveryTargetKnown(target: target, fromBlankQuorum: blank)))
        completeRecoveryIfDone(into: &actions)
    }

    /// Ends the recovery once a checkpoint at or above the target is stable here and its state installed.
    mutating func completeRecoveryIfDone(into actions: inout [PBFTAction]) {
        guard recovery.active, let target = recovery.target, checkpoints.stableSequence >= target, lowWatermark >= target,
            lastExecuted >= lowWatermark, stateTransfer.fetch == nil, stateTransfer.pending == nil
        else { return }
        recovery.active = false
        recovery.completedByEstimate = !recovery.fromBlankQuorum
        actions.append(.observe(.recovered(lowWatermark)))
        resumeVoting(into: &actions)
        if persistsRecords {
            // Nothing was written while recovering: restate everything now (in `flush`), then the end mark.
            stableCheckpointUnpersisted = true
            recovery.completionUnpersisted = true
        }
    }

    /// Votes for what arrived in this view while recovering (all of it above the target).
    mutating func resumeVoting(into actions: inout [PBFTAction]) {
        guard status == .normal else { return }
        for sequence in log.keys.sorted() where sequence > lowWatermark {
            guard let slot = log[sequence], let prePrepare = slot.prePrepare?.message, prePrepare.view == view, !slot.isCommitted else { continue }
            if prePrepare.sender != id, slot.prepares[id] == nil, !slot.awaitsVouchers, slot.batch != nil || slot.isPrepared {
                prepare(sequence, into: &actions)
            }
            if var prepared = log[sequence], prepared.isPrepared, prepared.commits[id] == nil {
                sendCommit(sequence, digest: prePrepare.digest, slot: &prepared, into: &actions)
                log[sequence] = prepared
            }
            advance(sequence, into: &actions)
        }
    }

    /// In `flush`, after the restatement: the end of the recovery, durable.
    mutating func persistRecoveryCompletion(into actions: inout [PBFTAction]) {
        guard recovery.completionUnpersisted, !recovery.active else { return }
        recovery.completionUnpersisted = false
        actions.append(.persist(.recovered))
    }

    /// A backup's timer on the fill: while a recovering replica waits for a checkpoint the cluster has not
    /// reached, execution must progress (with requests or null batches); a timeout without progress suspects
    /// the primary, as a waiting request does. (Found by the rolling-restart scenario: the recovering replica
    /// was the primary of an idle view, and nobody filled.)
    mutating func fillTimerExpired() -> Bool {
        guard !recovery.active, recovery.fillTarget > lowWatermark else {
            recovery.fillDeadline = nil
            return false
        }
        if lastScheduled > recovery.fillMark || recovery.fillDeadline == nil {
            recovery.fillMark = lastScheduled
            recovery.fillDeadline = now + timeoutTicks * (isPrimary ? 2 : 1)
            return false
        }
        guard let deadline = recovery.fillDeadline, now >= deadline else { return false }
        recovery.fillDeadline = nil
        return true
    }

    /// The null batches an idle primary proposes for a recovering replica (see `RecoveryState.fillTarget`):
    /// up to the checkpoint at or above the target, within the window and the pipeline.
    var fillGoal: SequenceNumber? {
        guard recovery.fillTarget > lowWatermark, pendingRequests.isEmpty else { return nil }
        let interval = settings.checkpointInterval
        let goal = SequenceNumber((recovery.fillTarget.rawValue + interval - 1) / interval * interval)
        return lastProposed < goal ? goal : nil
    }
}
