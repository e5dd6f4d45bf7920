import ThemisCore
import ThemisProtocolKit

/// Receiving VIEW-CHANGE and NEW-VIEW, and entering the new view (PBFT section 4.4).
extension PBFTReplica {
    mutating func receiveViewChange(_ authenticated: Authenticated<ViewChange>, into actions: inout [PBFTAction]) throws(Rejection) {
        let message = authenticated.message
        guard message.newView > view else {
            resendNewView(to: message, into: &actions)
            relayNewView(to: message.sender, into: &actions)
            throw .staleView(message.newView, current: view)
        }
        if let earlier = viewChange.received[message.sender] {
            // One VIEW-CHANGE per sender and view counts; a sender only moves forward.
            if earlier.message.newView == message.newView {
                throw earlier.message == message ? .duplicate : .equivocation(message.sender, SequenceNumber(message.newView.rawValue))
            }
            guard earlier.message.newView < message.newView else { throw .staleView(message.newView, current: earlier.message.newView) }
        }
        try validate(message)
        viewChange.received[message.sender] = authenticated
        // f+1 replicas want a later view: at least one is correct, so join the smallest of those views
        // even if our own timer has not expired.
        let current = targetView
        let later = viewChange.received.filter { $0.key != id && $0.value.message.newView > current }
        if later.count >= configuration.weakQuorumSize, let smallest = later.values.map(\.message.newView).min() {
            startViewChange(to: smallest, into: &actions)
        } else {
            sendNewViewIfReady(into: &actions)
        }
    }

    /// As the primary of the target view, with a quorum of VIEW-CHANGEs for it: send NEW-VIEW and enter.
    mutating func sendNewViewIfReady(into actions: inout [PBFTAction]) {
        guard case .viewChanging(let target) = status, configuration.primary(of: target) == id else { return }
        let forTarget = viewChange.received.values
            .filter { $0.message.newView == target }
            .sorted { $0.message.sender < $1.message.sender }
        guard forTarget.count >= configuration.quorumSize else { return }
        let chosen = Array(forTarget.prefix(configuration.quorumSize))
        let (stable, prePrepares) = Self.reproposals(from: chosen.map(\.message), view: target, primary: id)
        let message = NewView(view: target, viewChanges: chosen,
                              prePrepares: prePrepares.map { Authenticated($0, authenticator: []) }, sender: id)
        actions.append(.broadcast(.newView(message)))
        actions.append(.observe(.newViewSent(target)))
        enterView(target, reproposals: message.prePrepares, stable: stable, into: &actions)
        viewChange.sentNewView = message
        // After `enteredView` (replay order); the step's records are durable before its NEW-VIEW leaves.
        persist(.newViewSent(message), into: &actions)
    }

    /// A VIEW-CHANGE for the view this replica leads: its sender missed our NEW-VIEW (lost, or it crashed
    /// before it arrived; two replicas that miss it cannot leave the view on their own). Sent again, at most
    /// once per sender every half timeout.
    mutating func resendNewView(to message: ViewChange, into actions: inout [PBFTAction]) {
        guard message.newView == view, status == .normal, let sent = viewChange.sentNewView, sent.view == view else { return }
        let interval = max(1, settings.requestTimeoutTicks / 2)
        if let last = viewChange.newViewResent[message.sender], now < last + interval { return }
        viewChange.newViewResent[message.sender] = now
        actions.append(.broadcast(.newView(sent)))
    }

    /// As a backup in normal operation: the NEW-VIEW that started our view, to `peer`, which is in an earlier
    /// view or changing to this one (a VIEW-CHANGE, a RECOVERY-QUERY says so). The primary that sent it may be
    /// gone, and only a NEW-VIEW lets a replica enter a view. At most once per peer every half timeout.
    mutating func relayNewView(to peer: ReplicaID, into actions: inout [PBFTAction]) {
        guard status == .normal, !isPrimary, let accepted = viewChange.acceptedNewView, accepted.message.view == view else { return }
        let interval = max(1, settings.requestTimeoutTicks / 2)
        if let last = viewChange.newViewResent[peer], now < last + interval { return }
        viewChange.newViewResent[peer] = now
        actions.append(.send(.newViewRelay(NewViewRelay(newView: accepted, sender: id)), to: peer))
    }

    /// Backups check V (a quorum of valid VIEW-CHANGEs for the view, distinct senders), recompute O from
    /// it and reject a NEW-VIEW whose O differs. (Relayed or not: `authenticator` is the new primary's.)
    mutating func receiveNewView(_ message: NewView, authenticator: [UInt8], into actions: inout [PBFTAction]) throws(Rejection) {
        let floor = status == .normal ? view.next : targetView
        guard message.view >= floor else { throw .staleView(message.view, current: targetView) }
        let newPrimary = configuration.primary(of: message.view)
        guard message.sender == newPrimary else { throw .notFromPrimary(message.sender, primary: newPrimary) }
        var senders = Set<ReplicaID>()
        for entry in message.viewChanges {
            guard entry.message.newView == message.view else {
                throw .invalidCertificate("VIEW-CHANGE to \(entry.message.newView) in a NEW-VIEW for \(message.view)")
            }
            guard configuration.contains(entry.message.sender), senders.insert(entry.message.sender).inserted else {
                throw .invalidCertificate("NEW-VIEW repeats the VIEW-CHANGE of \(entry.message.sender)")
            }
            try validate(entry.message)
        }
        guard senders.count >= configuration.quorumSize else {
            throw .invalidCertificate("NEW-VIEW has \(senders.count) of \(configuration.quorumSize) VIEW-CHANGEs")
        }
        let (stable, expected) = Self.reproposals(from: message.viewChanges.map(\.message), view: message.view, primary: newPrimary)
        guard expected == message.prePrepares.map(\.message) else {
            throw .newViewMismatch("expected \(expected.count) re-proposals from \(expected.first?.sequence.rawValue ?? 0), got \(message.prePrepares.count)")
        }
        enterView(message.view, reproposals: message.prePrepares, stable: stable, into: &actions)
        viewChange.acceptedNewView = Authenticated(message, authenticator: authenticator)
    }

    /// Enters `newView`: adopts the stable checkpoint proven in V, installs O, re-proposes (primary) or
    /// relays (backups) the requests still waiting, and replays messages that arrived early.
    mutating func enterView(_ newView: View, reproposals: [Authenticated<PrePrepareHeader>], stable: ViewChange,
                            into actions: inout [PBFTAction]) {
        // The batches we hold, by digest: O names batches by digest only.
        var known: [Digest: [Request]] = [Self.nullBatchDigest: []]
        for slot in log.values {
            if let digest = slot.prePrepare?.message.digest, let batch = slot.batch { known[digest] = batch }
        }
        for held in viewChange.heldBatches.values {
            for (digest, requests) in held { known[digest] = requests }
        }
        view = newView
        status = .normal
        viewChange.sentNewView = nil
        viewChange.acceptedNewView = nil
        viewChange.newViewResent = [:]
        viewChange.viewChangeDeadline = nil
        viewChange.received = viewChange.received.filter { $0.value.message.newView > newView }
        adoptStableCheckpoint(stable, into: &actions)
        log = [:]
        // Entering a view without a VIEW-CHANGE of ours (a NEW-VIEW that arrived first): as in `startViewChange`.
        // Here, after the old view's log is gone: an undo that completes at once re-executes only what commits in
        // this view, never the old view's prepared batches as tentative ones of this view.
        abandonTentative(into: &actions)
        persist(.enteredView(newView), into: &actions)
        lastProposed = max(reproposals.last?.message.sequence ?? lowWatermark, lowWatermark)
        proposedTimestamps = [:]
        relayedTimestamps = [:]
        pendingRequests = RequestQueue()
        queuedClients = []
        actions.append(.observe(.viewChanged(newView, primary: primary)))
        var reproposed = Set<Digest>()
        for prePrepare in reproposals {
            let batch = known[prePrepare.message.digest].flatMap { prePrepare.message.matches($0) ? $0 : nil }
            if batch == nil { actions.append(.observe(.batchMissing(prePrepare.message.sequence))) }
            for request in batch ?? [] { reproposed.insert(request.digest) }
            acceptPrePrepare(prePrepare, batch: batch, into: &actions)
        }
        for request in viewChange.waiting.values.sorted(by: { $0.client < $1.client }) where !reproposed.contains(request.digest) {
            if isPrimary {
                try? enqueue(request)
            } else {
                relay(request, into: &actions)
            }
        }
        viewChange.requestDeadline = viewChange.waiting.isEmpty ? nil : now + timeoutTicks
        replayBufferedMessages(into: &actions)
    }

    /// Moves h to the latest stable checkpoint proven in V; if this replica's state is not there, it
    /// needs state transfer.
    mutating func adoptStableCheckpoint(_ stable: ViewChange, into actions: inout [PBFTAction]) {
        let sequence = stable.stableCheckpoint
        guard sequence > lowWatermark else { return }
        let own = checkpoints.own[sequence]
        let reached = lastScheduled >= sequence && (own == nil || own == stable.stableDigest)
        let proof = forwardableProof(stable)
        makeStable(sequence, digest: stable.stableDigest, proof: proof, into: &actions)
        if !reached {
            actions.append(.observe(.stateTransferNeeded(sequence, stable.stableDigest)))
            // The forwardable proof, not V's raw one: `install` keeps it as our stable proof (issue 9, finding 2).
            stateTransfer.pending = (sequence, stable.stableDigest, proof)
        }
    }

    /// A checkpoint proof this replica can show in its own VIEW-CHANGE later: entries another replica's
    /// VIEW-CHANGE only implied (its own, with an empty authenticator) do not convince anyone when we
    /// forward them, so they are replaced by the matching CHECKPOINT messages we received ourselves.
    func forwardableProof(_ stable: ViewChange) -> [Authenticated<Checkpoint>] {
        var bySender: [ReplicaID: Authenticated<Checkpoint>] = [:]
        for entry in stable.checkpointProof where !entry.authenticator.isEmpty || entry.message.sender == id {
            bySender[entry.message.sender] = entry
        }
        for (sender, entry) in checkpoints.votes[stable.stableCheckpoint] ?? [:]
        where entry.message.stateDigest == stable.stableDigest && bySender[sender] == nil {
            bySender[sender] = entry
        }
        return bySender.values.sorted { $0.message.sender < $1.message.sender }
    }

    /// Feeds messages that arrived for this view before we entered it; later views stay buffered.
    mutating func replayBufferedMessages(into actions: inout [PBFTAction]) {
        let buffered = viewChange.future
        viewChange.clearFuture()
        for entry in buffered {
            _ = try? receive(entry, into: &actions)
        }
    }
}
