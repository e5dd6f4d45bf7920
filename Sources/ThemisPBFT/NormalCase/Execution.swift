import ThemisCore
import ThemisProtocolKit

/// Executing committed batches strictly in sequence order, the reply cache, and replies
/// (PBFT section 4.2, step 5).
extension PBFTReplica {
    /// Hands every committed batch that follows the last scheduled one to the application, in order.
    /// Requests already executed (same client, timestamp not newer) are left out: exactly-once.
    mutating func scheduleExecution(into actions: inout [PBFTAction]) {
        // While a state transfer runs, execution waits: the installed state replaces it. So it does while a
        // tentative batch awaits its undo.
        guard stateTransfer.fetch == nil, !undoPending else { return }
        // A committed slot whose batch we lack (a re-proposal accepted by digest) waits for FETCH-BATCHES.
        while let slot = log[lastScheduled.next], slot.isCommitted, let requests = slot.batch {
            let sequence = lastScheduled.next
            if tentative.first?.sequence == sequence {
                // Executed already (tentatively): it stays, or the chain is undone if another batch committed here.
                guard confirmTentative(slot, into: &actions) else { return }
                continue
            }
            let isCheckpoint = sequence.rawValue % settings.checkpointInterval == 0
            let batch = ExecutionBatch(sequence: sequence, view: view, requests: scheduleFresh(requests), checkpoint: isCheckpoint)
            lastScheduled = sequence
            executing.append(batch)
            actions.append(.execute(batch))
        }
        scheduleTentativeExecution(into: &actions)
    }

    /// The requests of a batch that have not been handed to the application before (exactly-once), marked as
    /// handed now in the client table.
    mutating func scheduleFresh(_ requests: [Request]) -> [Request] {
        var fresh: [Request] = []
        fresh.reserveCapacity(requests.count)
        for request in requests where clientTable.schedule(request) {
            fresh.append(request)
        }
        return fresh
    }

    public mutating func executed(
        _ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?,
        into actions: inout [PBFTAction]
    ) {
        precondition(!executing.isEmpty && executing[0].sequence == sequence,
                     "executed(\(sequence)) out of order; expected \(executing.first?.sequence.description ?? "nothing")")
        let batch = executing.removeFirst()
        precondition(results.count == batch.requests.count, "\(results.count) results for \(batch.requests.count) requests")
        if batch.tentative, undoPending {
            // An undo waits for the application: every tentative batch still with it belongs to the undone chain or
            // was confirmed just before it (nothing is scheduled meanwhile). Its results are of a state about to be
            // replaced; the undo executes again whatever committed.
            finishUndo(into: &actions)
            return
        }
        lastExecuted = sequence
        // Still tentative (not confirmed here yet): the replies say so, and count only towards 2f+1.
        let isTentative = batch.tentative && tentative.contains { $0.sequence == sequence }
        // A tentative reply names the view its batch prepared in (a client counts tentative replies of one view).
        let replyView = isTentative ? batch.view : view
        for (request, result) in zip(batch.requests, results) {
            let reply = Reply(view: replyView, timestamp: request.timestamp, client: request.client, replica: id, result: result,
                              tentative: isTentative)
            clientTable.recordExecution(reply)
            actions.append(.reply(reply))
        }
        if !isTentative { noteExecuted(batch.requests) }
        actions.append(.observe(.executed(sequence, requests: batch.requests.count)))
        if batch.checkpoint {
            precondition(applicationSnapshot != nil, "checkpoint batch \(sequence) executed without an application snapshot")
            takeCheckpoint(sequence, applicationSnapshot: applicationSnapshot ?? [], into: &actions)
        }
        finishUndo(into: &actions)
    }
}
