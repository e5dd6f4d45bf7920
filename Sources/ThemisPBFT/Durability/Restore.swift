import ThemisCore
import ThemisProtocolKit

/// Durable mode: what the core writes (`PBFTRecord`) and how it is rebuilt from it after a crash.
///
/// Records are appended where the state they stand for changes, before the message that reveals it
/// (`Action`'s ordering contract makes them durable before any send of the step). When a checkpoint
/// becomes stable, `flush` saves its state and restates, in a new log segment, everything above it:
/// the view, the accepted PRE-PREPAREs (with their batches), the prepared certificates, the committed
/// marks and our own VIEW-CHANGE. The log therefore stays within about one checkpoint window.
extension PBFTReplica {
    /// Appends `record` in durable mode.
    mutating func persist(_ record: @autoclosure () -> PBFTRecord, into actions: inout [PBFTAction]) {
        // Recovering: nothing (the end of the recovery restates everything); a crash before it recovers again.
        guard persistsRecords, !recovery.active else { return }
        actions.append(.persist(record()))
    }

    /// After a step in which the stable checkpoint moved (or its state arrived): saves its state and
    /// restates what the replica must not forget above it, in a new segment.
    mutating func persistStableCheckpoint(into actions: inout [PBFTAction]) {
        guard persistsRecords, stableCheckpointUnpersisted, !recovery.active else { return }
        stableCheckpointUnpersisted = false
        let sequence = lowWatermark
        // Without the state (a checkpoint adopted from a NEW-VIEW, fetched later) the log goes on in the
        // same segment; the state transfer's `install` comes back here with it.
        if let state = stateTransfer.snapshots[sequence] {
            actions.append(.persistCheckpoint(sequence, state: state))
        }
        actions.append(.persist(.stable(sequence, checkpoints.stableDigest ?? .zero, proof: checkpoints.stableProof)))
        actions.append(.persist(.enteredView(view)))
        if let sent = viewChange.sentNewView { actions.append(.persist(.newViewSent(sent))) }
        for sequence in log.keys.sorted() {
            guard let slot = log[sequence], let prePrepare = slot.prePrepare else { continue }
            if slot.isCommitted, let batch = slot.batch {
                // Committed (in this view, or fetched from f + 1 replicas with the view it was ordered in).
                actions.append(.persist(.committedBatch(prePrepare.message.with(batch))))
            } else {
                // "Vouched": our PREPARE went out (see `acceptPrePrepare`; replay ignores it for our own proposals).
                actions.append(.persist(.prePrepare(prePrepare, batch: slot.batch, vouched: slot.prepares[id] != nil)))
            }
        }
        for sequence in viewChange.preparedCertificates.keys.sorted() {
            if let certificate = viewChange.preparedCertificates[sequence] { actions.append(.persist(.prepared(certificate))) }
        }
        for sequence in log.keys.sorted() where log[sequence]?.isCommitted == true {
            actions.append(.persist(.committed(sequence)))
        }
        if case .viewChanging = status, let own = viewChange.received[id] {
            actions.append(.persist(.viewChange(own.message)))
        }
    }

    /// Rebuilds this (freshly made) replica from its write-ahead log; see `ReplicaCore.restore`. From now on
    /// the replica persists records.
    public mutating func restore(
        _ records: [PBFTRecord], snapshot: (SequenceNumber) -> [UInt8]?, into actions: inout [PBFTAction]
    ) throws(RestoreError) {
        precondition(lastScheduled == .zero && log.isEmpty && !persistsRecords, "restore is for a freshly made replica")
        persistsRecords = true
        // A recovery that did not finish (its `recovered` mark, the last record of the step that restated the
        // replica's state, is missing): whatever follows its start is not to be trusted. Recover again.
        let recoveryPending = records.last { if case .recovering = $0 { return true }; if case .recovered = $0 { return true }; return false }
            .map { if case .recovering = $0 { return true }; return false } ?? false
        if !recoveryPending {
            var entered: View?
            for record in records {
                try replay(record, entered: &entered)
            }
        }
        if records.isEmpty && recovery.knownFirstStart {
            // The cluster's first start, known as such: the log gets a first (urgent) record before anything is
            // sent, so that every later start finds a log that is not empty.
            actions.append(.persist(.enteredView(view)))
        } else if records.isEmpty || recoveryPending {
            // Nothing to remember (an empty or deleted data directory), or a recovery that did not finish: recover.
            // The first record says so before anything is sent.
            beginRecovery()
            if records.isEmpty { actions.append(.persist(.recovering)) }
            actions.append(.observe(.restored(view: view, stable: lowWatermark, slots: 0)))
            return
        }
        if lowWatermark > .zero {
            let sequence = lowWatermark
            let digest = checkpoints.stableDigest ?? .zero
            if let state = snapshot(sequence) {
                let (decoded, chunks) = try CheckpointState.restore(state, sequence: sequence, digest: digest, replica: id, view: view, limits: limits)
                clientTable = decoded.clientTable
                actions.append(.installState(sequence, applicationSnapshot: decoded.applicationSnapshot))
                lastScheduled = sequence
                lastExecuted = sequence
                stateTransfer.snapshots[sequence] = state
                stateTransfer.chunkDigests[sequence] = chunks
            } else {
                // No usable state on disk: fetch it like a replica that adopted the checkpoint from a NEW-VIEW.
                actions.append(.observe(.stateTransferNeeded(sequence, digest)))
                stateTransfer.pending = (sequence, digest, checkpoints.stableProof)
            }
        }
        lastProposed = max(lastProposed, lowWatermark)
        if !records.isEmpty {
            // A proposal of ours (as the primary) or an accepted PRE-PREPARE (as a backup) may have been lost
            // with the crash (they are not urgent records): proposing again could give a sequence number a second
            // batch, preparing again a second PREPARE. Neither happens in this view.
            restoredView = view
            if status == .normal, isPrimary { actions.append(.observe(.restoredAsPrimary(view))) }
        }
        for sequence in log.keys.sorted() {
            for request in log[sequence]?.batch ?? [] { noteWaiting(request) }
        }
        if case .viewChanging = status { viewChange.viewChangeDeadline = now + timeoutTicks }
        actions.append(.observe(.restored(view: view, stable: lowWatermark, slots: log.count)))
        // Committed batches after the checkpoint run again on its state; the retransmission timer repeats
        // our votes for the others.
        scheduleExecution(into: &actions)
    }

    /// - Parameter entered: the view of the last `enteredView` replayed.
    private mutating func replay(_ record: PBFTRecord, entered: inout View?) throws(RestoreError) {
        switch record {
        case .stable(let sequence, let digest, let proof):
            guard sequence >= lowWatermark else { throw .invalidRecord("stable checkpoint \(sequence.rawValue) after \(lowWatermark.rawValue)") }
            guard sequence.rawValue % settings.checkpointInterval == 0 else {
                throw .invalidRecord("stable checkpoint \(sequence.rawValue) is not a multiple of \(settings.checkpointInterval)")
            }
            checkpoints.markStable(sequence, digest: digest, proof: proof)
            lowWatermark = sequence
            log = log.filter { $0.key > sequence }
            viewChange.preparedCertificates = viewChange.preparedCertificates.filter { $0.key > sequence }
            viewChange.heldBatches = viewChange.heldBatches.filter { $0.key > sequence }
        case .enteredView(let newView):
            guard newView >= view else { throw .invalidRecord("entered view \(newView.rawValue) after view \(view.rawValue)") }
            // A restatement of the view this log already entered (a new segment whose sync a crash cut short, read
            // after the old one): what the old records rebuilt stays (its slots, a VIEW-CHANGE sent since); the
            // restated records repeat it.
            if entered == newView { return }
            entered = newView
            view = newView
            status = .normal
            log = [:]
            viewChange.sentNewView = nil
            lastProposed = lowWatermark
            viewChange.received = viewChange.received.filter { $0.value.message.newView > newView }
        case .viewChange(let message):
            guard message.sender == id, message.newView > view else {
                throw .invalidRecord("VIEW-CHANGE of \(message.sender) to \(message.newView.rawValue) in view \(view.rawValue)")
            }
            status = .viewChanging(to: message.newView)
            viewChange.received[id] = Authenticated(message, authenticator: [])
        case .prePrepare(let authenticated, let batch, let vouched):
            let header = authenticated.message
            guard header.sequence > lowWatermark else { return }
            // (Not checked against the window: a step may accept a slot above the old window after the
            // checkpoint that moved it became stable, and the `stable` record comes at the end of the step.)
            guard header.view == view else {
                throw .invalidRecord("PRE-PREPARE (\(header.view.rawValue), \(header.sequence.rawValue)) in view \(view.rawValue)")
            }
            if let batch, !header.matches(batch) { throw .invalidRecord("the batch of \(header.sequence.rawValue) does not match its digest") }
            var slot = Slot()
            slot.prePrepare = authenticated
            slot.batch = batch
            if header.sender == id {
                lastProposed = max(lastProposed, header.sequence)
            } else if vouched {
                slot.prepares[id] = Authenticated(Prepare(view: view, sequence: header.sequence, digest: header.digest, sender: id), authenticator: [])
            } else {
                slot.awaitsVouchers = true
            }
            log[header.sequence] = slot
            if let batch { viewChange.hold(batch, digest: header.digest, at: header.sequence) }
        case .batch(let sequence, let requests):
            guard sequence > lowWatermark, let header = log[sequence]?.prePrepare?.message else { return }
            guard header.matches(requests) else { throw .invalidRecord("the batch of \(sequence.rawValue) does not match its digest") }
            log[sequence]?.batch = requests
            viewChange.hold(requests, digest: header.digest, at: sequence)
        case .prepared(let certificate):
            let sequence = certificate.sequence
            guard sequence > lowWatermark else { return }
            viewChange.preparedCertificates[sequence] = certificate
            guard certificate.view == view, log[sequence]?.prePrepare?.message.digest == certificate.digest else { return }
            log[sequence]?.isPrepared = true
            log[sequence]?.commits[id] = certificate.digest
            for prepare in certificate.prepares { log[sequence]?.prepares[prepare.message.sender] = prepare }
        case .committed(let sequence):
            guard sequence > lowWatermark, log[sequence]?.isPrepared == true else { return }
            log[sequence]?.isCommitted = true
        case .proposed(let prePrepare):
            guard prePrepare.sequence > lowWatermark else { return }
            guard prePrepare.sender == id, prePrepare.view == view, Request.batchDigest(prePrepare.requests) == prePrepare.digest else {
                throw .invalidRecord("proposal (\(prePrepare.view.rawValue), \(prePrepare.sequence.rawValue)) of \(prePrepare.sender) in view \(view.rawValue)")
            }
            var slot = Slot()
            slot.prePrepare = Authenticated(prePrepare.header, authenticator: [])
            slot.batch = prePrepare.requests
            log[prePrepare.sequence] = slot
            lastProposed = max(lastProposed, prePrepare.sequence)
            viewChange.hold(prePrepare.requests, digest: prePrepare.digest, at: prePrepare.sequence)
        case .newViewSent(let message):
            guard message.sender == id, message.view == view else {
                throw .invalidRecord("NEW-VIEW of \(message.sender) for \(message.view.rawValue) in view \(view.rawValue)")
            }
            viewChange.sentNewView = message
        case .committedBatch(let prePrepare):
            let sequence = prePrepare.sequence
            guard sequence > lowWatermark else { return }
            // Any view: COMMITTED-BATCHES may bring batches ordered in a view this replica has not entered.
            guard Request.batchDigest(prePrepare.requests) == prePrepare.digest else {
                throw .invalidRecord("committed batch (\(prePrepare.view.rawValue), \(sequence.rawValue)) in view \(view.rawValue)")
            }
            var slot = log[sequence] ?? Slot()
            if slot.prePrepare?.message.digest != prePrepare.digest {
                slot = Slot()
                slot.prePrepare = Authenticated(prePrepare.header, authenticator: [])
            }
            slot.batch = prePrepare.requests
            slot.isPrepared = true
            slot.isCommitted = true
            log[sequence] = slot
            viewChange.hold(prePrepare.requests, digest: prePrepare.digest, at: sequence)
        case .recovering, .recovered:
            break  // handled by `restore`
        }
    }
}
