import ThemisCore

/// A replica that missed a view change (it was down, or its NEW-VIEW was lost) sees normal-case
/// messages of a later view. Once f+1 distinct replicas speak in view w, at least one correct replica
/// accepted a valid NEW-VIEW for w, so this replica follows into w without the NEW-VIEW; the batches it
/// missed (O and after) it fetches as committed batches.
extension PBFTReplica {
    mutating func followLaterViewIfNeeded(into actions: inout [Action<PBFTMessage>]) {
        var senders: [View: Set<ReplicaID>] = [:]
        for entry in viewChange.future {
            guard let messageView = entry.message.normalCaseView, messageView > view else { continue }
            senders[messageView, default: []].insert(entry.message.sender)
        }
        let candidates = senders.filter { $0.value.count >= configuration.weakQuorumSize && $0.key >= targetView }.keys
        // Never become a primary this way: a primary that restarted does not know what it proposed.
        guard let later = candidates.max(), configuration.primary(of: later) != id else { return }
        view = later
        status = .normal
        viewChange.viewChangeDeadline = nil
        viewChange.received = viewChange.received.filter { $0.value.message.newView > later }
        log = log.filter { $0.value.isCommitted }
        lastProposed = max(lastProposed, lastScheduled)
        proposedTimestamps = [:]
        relayedTimestamps = [:]
        pendingRequests = RequestQueue()
        actions.append(.observe(.viewChanged(later, primary: primary)))
        for request in viewChange.waiting.values.sorted(by: { $0.client < $1.client }) {
            relay(request, into: &actions)
        }
        viewChange.requestDeadline = viewChange.waiting.isEmpty ? nil : now + timeoutTicks
        stateTransfer.catchingUp = true
        fetchBatchesIfBehind(force: true, into: &actions)
        replayBufferedMessages(into: &actions)
    }
}
