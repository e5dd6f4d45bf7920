import ThemisCore
import ThemisProtocolKit

/// Tentative execution (Castro and Liskov, OSDI'99 section 5.1.2; `ProtocolSettings.tentativeExecution`).
///
/// A replica executes a batch as soon as it prepared and every earlier batch committed, and replies at once,
/// marked tentative; the client accepts a quorum (2f+1) of matching tentative replies. The reply's latency
/// loses the COMMIT round. Why it is safe: 2f+1 replicas that prepared the batch include f+1 correct ones,
/// so the batch commits at that sequence number in every later view (the view change carries their prepared
/// certificates), after the same committed prefix, with the same results.
///
/// At most one batch is tentative at a time (`tentative`, at `lastScheduled + 1`): the next one waits until
/// it committed. When it commits, it simply stays executed. If this replica leaves the view before it
/// committed here, the batch is undone: once the application is idle, the core installs its own stable
/// checkpoint's state again and re-executes the batches as they commit (in the old view if they had, or in
/// the new one). Checkpoint batches are never tentative (a checkpoint's state is a committed state), nor is
/// anything before this replica holds a stable checkpoint's state to undo to, while it recovers, or during a
/// state transfer. Until execution is back where it was before an undo, the replica answers no read-only
/// request: a client may have completed a write on the state it undid.
extension PBFTReplica {
    /// Hands the next batch to the application before it committed, if it prepared and the rules allow.
    mutating func scheduleTentativeExecution(into actions: inout [PBFTAction]) {
        guard settings.tentativeExecution, tentative == nil, !undoPending, status == .normal, !recovery.active,
            stateTransfer.fetch == nil, lowWatermark <= lastScheduled, stateTransfer.snapshots[lowWatermark] != nil
        else { return }
        let sequence = lastScheduled.next
        guard sequence.rawValue % settings.checkpointInterval != 0, let slot = log[sequence], slot.isPrepared, !slot.isCommitted,
            let requests = slot.batch, let digest = slot.prePrepare?.message.digest
        else { return }
        var fresh: [Request] = []
        fresh.reserveCapacity(requests.count)
        for request in requests where clientTable.schedule(request) {
            fresh.append(request)
        }
        tentative = (sequence, digest)
        let batch = ExecutionBatch(sequence: sequence, view: view, requests: fresh, checkpoint: false, tentative: true)
        executing.append(batch)
        actions.append(.execute(batch))
    }

    /// The tentative batch's slot committed (`slot` is `log[tentative.sequence]`): it stays executed, or, if
    /// another batch committed there, it is undone. Returns true if it stays.
    mutating func confirmTentative(_ slot: Slot, into actions: inout [PBFTAction]) -> Bool {
        guard let held = tentative else { return false }
        tentative = nil
        guard slot.prePrepare?.message.digest == held.digest else {
            undoTentative(held.sequence, into: &actions)
            return false
        }
        lastScheduled = held.sequence
        // Its cached replies (if it executed already) are no longer tentative; a retransmission gets them as final.
        if let requests = slot.batch {
            clientTable.confirmReplies(of: requests)
            noteExecuted(requests)
        }
        actions.append(.observe(.tentativeCommitted(held.sequence)))
        return true
    }

    /// Leaving the view (or learning that another batch committed at its sequence number): the tentative
    /// batch, if any, is undone.
    mutating func abandonTentative(into actions: inout [PBFTAction]) {
        guard let held = tentative else { return }
        tentative = nil
        undoTentative(held.sequence, into: &actions)
    }

    private mutating func undoTentative(_ sequence: SequenceNumber, into actions: inout [PBFTAction]) {
        undoPending = true
        undoHighWater = max(undoHighWater, sequence)
        if executing.last?.sequence == sequence { undoneWhileExecuting = sequence }
        actions.append(.observe(.tentativeUndone(sequence)))
        finishUndo(into: &actions)
    }

    /// Once the application is idle: installs our stable checkpoint's state again and re-executes what
    /// committed after it. If this replica is behind its stable checkpoint (a NEW-VIEW moved it), the state
    /// transfer that follows replaces the state instead, and execution waits for it.
    mutating func finishUndo(into actions: inout [PBFTAction]) {
        guard undoPending, executing.isEmpty else { return }
        guard lowWatermark <= lastScheduled, let encoded = stateTransfer.snapshots[lowWatermark],
            let state = CheckpointState.decode(encoded, replica: id, view: view, limits: limits)
        else { return }
        undoPending = false
        clientTable = state.clientTable
        actions.append(.installState(lowWatermark, applicationSnapshot: state.applicationSnapshot))
        lastScheduled = lowWatermark
        lastExecuted = lowWatermark
        scheduleExecution(into: &actions)
    }

    /// A state installed by state transfer replaces whatever was executed tentatively or awaited an undo.
    mutating func forgetTentative() {
        tentative = nil
        undoPending = false
        undoneWhileExecuting = nil
    }
}
