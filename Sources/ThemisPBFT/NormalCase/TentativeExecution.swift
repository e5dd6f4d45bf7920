import ThemisCore
import ThemisProtocolKit

/// Tentative execution (Castro and Liskov, OSDI'99 section 5.1.2; `ProtocolSettings.tentativeExecution`).
///
/// A replica executes a batch as soon as it prepared (in the current view) and every earlier batch committed
/// or was itself executed tentatively in this view, and replies at once, marked tentative. The reply's latency
/// loses the COMMIT round. A client accepts a quorum (2f+1) of matching tentative replies of one view (`ClientCore`).
/// Why it is safe: those 2f+1 replicas include f+1 correct ones that prepared the batch, and every uncommitted
/// batch before it, in that view; a batch prepared at f+1 correct replicas in one view commits at that sequence
/// number in every later view (the view change carries their prepared certificates). So every batch the result
/// depended on commits as executed, and the result is the final one.
///
/// Tentative batches form a chain from `lastScheduled + 1` (`tentative`, in order). As each one commits it
/// simply stays executed. A batch after an unconfirmed one is always tentative, even if it already committed (its
/// result depends on the unconfirmed state). If this replica leaves the view while the chain is not empty (or
/// another batch committed at a sequence number of the chain), the chain is undone: once the application is idle,
/// the core installs its own stable checkpoint's state again and re-executes the batches as they commit (in the
/// old view if they had, or in the new one). Checkpoint batches are never tentative (a checkpoint's state is a
/// committed state: the chain stops before one), nor is anything before this replica holds a stable checkpoint's
/// state to undo to, while it recovers, or during a state transfer. Reads (Castro and Liskov 5.1.3): the replica
/// answers a read-only request only while its chain is empty (the driver holds reads meanwhile:
/// `defersReadOnlyRequests`), so no read sees a write that may still be undone; and until execution is back where
/// it was before an undo it answers none: a client may have completed a write on the state it undid.
extension PBFTReplica {
    /// Extends the chain of tentative batches with the next prepared ones, as far as the rules allow.
    mutating func scheduleTentativeExecution(into actions: inout [PBFTAction]) {
        guard settings.tentativeExecution, !undoPending, status == .normal, !recovery.active, stateTransfer.fetch == nil,
            lowWatermark <= lastScheduled, stateTransfer.snapshots[lowWatermark] != nil
        else { return }
        var sequence = (tentative.last?.sequence ?? lastScheduled).next
        while sequence.rawValue % settings.checkpointInterval != 0, let slot = log[sequence], slot.isPrepared,
            let requests = slot.batch, let header = slot.prePrepare?.message, header.view == view
        {
            // A committed batch at the head of the chain runs as an ordinary one.
            if tentative.isEmpty && slot.isCommitted { return }
            tentative.append((sequence, header.digest))
            let batch = ExecutionBatch(sequence: sequence, view: view, requests: scheduleFresh(requests), checkpoint: false, tentative: true)
            executing.append(batch)
            actions.append(.execute(batch))
            sequence = sequence.next
        }
    }

    /// The slot at the head of the chain committed (`slot` is `log[tentative[0].sequence]`): it stays executed,
    /// or, if another batch committed there, the chain is undone. Returns true if it stays.
    mutating func confirmTentative(_ slot: Slot, into actions: inout [PBFTAction]) -> Bool {
        guard let head = tentative.first else { return false }
        guard slot.prePrepare?.message.digest == head.digest else {
            abandonTentative(into: &actions)
            return false
        }
        tentative.removeFirst()
        lastScheduled = head.sequence
        // Its cached replies (if it executed already) are no longer tentative; a retransmission gets them as final.
        if let requests = slot.batch {
            clientTable.confirmReplies(of: requests)
            noteExecuted(requests)
        }
        actions.append(.observe(.tentativeCommitted(head.sequence)))
        return true
    }

    /// Leaving the view (or learning that another batch committed at a sequence number of the chain): the chain
    /// of tentative batches, if any, is undone.
    mutating func abandonTentative(into actions: inout [PBFTAction]) {
        guard let first = tentative.first, let last = tentative.last else { return }
        tentative = []
        // Nothing is scheduled while this is set: `executed` drops the results of every tentative batch the
        // application still runs, and `finishUndo` executes again what committed.
        undoPending = true
        undoHighWater = max(undoHighWater, last.sequence)
        actions.append(.observe(.tentativeUndone(first.sequence)))
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
        tentative = []
        undoPending = false
    }
}
