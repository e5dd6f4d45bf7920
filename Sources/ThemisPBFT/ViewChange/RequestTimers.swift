import ThemisCore
import ThemisProtocolKit

/// Request timers at the backups and the escalation of a stalled view change (PBFT section 4.4):
/// a backup that waits too long for a request to execute suspects the primary.
extension PBFTReplica {
    /// The current timeout: the configured one, doubled for every view change without progress, up to
    /// 64 times (an uncapped backoff lets a long lossy period push the next view change out of reach).
    var timeoutTicks: UInt64 {
        settings.requestTimeoutTicks << UInt64(min(viewChange.attempts, 6))
    }

    /// Messages are sent once and may be lost: every half timeout a replica repeats what others may still
    /// need from it for sequence numbers it has not executed yet (its PRE-PREPARE as primary, its PREPARE
    /// and COMMIT), and, while changing views, its VIEW-CHANGE. Duplicates are rejected cheaply.
    mutating func retransmit(into actions: inout [PBFTAction]) {
        switch status {
        case .viewChanging:
            guard var message = viewChange.received[id]?.message else { break }
            // A VIEW-CHANGE made with a stable proof short of a quorum (adopted from a NEW-VIEW, or restored
            // from disk before the others' repeated CHECKPOINTs completed it) is rejected by everyone: once
            // the proof is complete, the repeat carries it (found by simulator seed 183: eight correct
            // replicas restarted from disk kept repeating VIEW-CHANGEs with 6 of 7 proof entries).
            if message.stableCheckpoint == lowWatermark, message.checkpointProof.count < configuration.quorumSize,
               checkpoints.stableProof.count > message.checkpointProof.count {
                message = ViewChange(newView: message.newView, stableCheckpoint: message.stableCheckpoint, stableDigest: message.stableDigest,
                                     checkpointProof: checkpoints.stableProof, prepared: message.prepared, sender: id)
                viewChange.received[id] = Authenticated(message, authenticator: [])
                persist(.viewChange(message), into: &actions)
            }
            actions.append(.broadcast(.viewChange(message)))
        case .normal:
            for sequence in log.keys.sorted() where sequence > lastScheduled {
                guard let slot = log[sequence], let prePrepare = slot.prePrepare?.message, prePrepare.view == view else { continue }
                if prePrepare.sender == id {
                    // A re-proposal whose batch we lack ourselves cannot be repeated; O already carried it.
                    if let batch = slot.batch { actions.append(.broadcast(.prePrepare(prePrepare.with(batch)))) }
                } else if let own = slot.prepares[id] {
                    actions.append(.broadcast(.prepare(own.message)))
                }
                if slot.isPrepared, let digest = slot.commits[id] {
                    actions.append(.broadcast(.commit(Commit(view: view, sequence: sequence, digest: digest, sender: id))))
                }
            }
        }
    }

    public mutating func tick(into actions: inout [PBFTAction]) {
        now += 1
        // Started empty (first start, or a restart in in-memory mode): ask the others where they are, on the
        // first tick and every request timeout until something executes (in a process, the links may not be
        // up at the first tick). Those past a stable checkpoint answer with their CHECKPOINT for it.
        if lastScheduled == .zero, (now - 1) % max(1, settings.requestTimeoutTicks) == 0 { fetchBatchesIfBehind(force: true, into: &actions) }
        stateTransferTick(into: &actions)
        recoveryTick(into: &actions)
        serveDeferredFetches(into: &actions)
        if now % max(1, settings.requestTimeoutTicks / 2) == 0 { retransmit(into: &actions) }
        switch status {
        case .normal:
            // The primary suspects itself too, after twice the timeout: a primary that cannot get a request
            // committed (a backup left the view alone, say) is of no use in this view.
            if let deadline = viewChange.requestDeadline, now >= deadline, !isPrimary || now >= deadline + timeoutTicks {
                startViewChange(to: view.next, into: &actions)
            } else if fillTimerExpired() {
                startViewChange(to: view.next, into: &actions)
            }
        case .viewChanging(let target):
            // PBFT 4.5.2: the timer for `target` runs only once a quorum (2f+1, ourselves included) asked
            // for it or a later view. A replica ahead of the others waits for them instead of moving on
            // alone: otherwise correct replicas can stay views apart forever (seed 1566: two at 16, one at
            // 18, one silent; the backoff cap keeps the distance).
            let supporters = viewChange.received.values.reduce(0) { $0 + ($1.message.newView >= target ? 1 : 0) }
            guard supporters >= configuration.quorumSize else {
                viewChange.viewChangeDeadline = nil
                break
            }
            if viewChange.viewChangeDeadline == nil { viewChange.viewChangeDeadline = now + timeoutTicks }
            if let deadline = viewChange.viewChangeDeadline, now >= deadline {
                // The new primary did not deliver a NEW-VIEW in time: try the next one.
                startViewChange(to: target.next, into: &actions)
            }
        }
    }

    /// Remembers a request this replica expects to execute and starts the timer if it was idle.
    mutating func noteWaiting(_ request: Request) {
        guard request.timestamp > clientTable.lastExecuted(request.client) else { return }
        if let known = viewChange.waiting[request.client], known.timestamp >= request.timestamp { return }
        viewChange.waiting[request.client] = request
        if viewChange.requestDeadline == nil {
            viewChange.requestDeadline = now + timeoutTicks
        }
    }

    /// Executed requests stop waiting; progress resets the backoff and restarts the timer for the rest.
    mutating func noteExecuted(_ requests: [Request]) {
        var progressed = false
        for request in requests {
            if let known = viewChange.waiting[request.client], known.timestamp <= request.timestamp {
                viewChange.waiting[request.client] = nil
                progressed = true
            }
        }
        guard progressed else { return }
        viewChange.attempts = 0
        viewChange.requestDeadline = viewChange.waiting.isEmpty ? nil : now + timeoutTicks
    }
}
