import ThemisCore
import ThemisProtocolKit

/// The three-phase agreement: PRE-PREPARE, PREPARE, COMMIT (PBFT section 4.2, steps 2-4).
extension PBFTReplica {
    /// A backup accepts a pre-prepare only if it is in view v and not changing view, s is within the
    /// watermarks, the batch matches the digest, and it has not accepted a different pre-prepare for (v, s).
    /// - Parameter requestsUnverified: a client request in the batch did not verify here; the batch is
    ///   logged but prepared only once f other backups have prepared it (see `advance`).
    mutating func receivePrePrepare(
        _ authenticated: Authenticated<PrePrepare>, requestsUnverified: Bool = false, into actions: inout [PBFTAction]
    ) throws(Rejection) {
        let prePrepare = authenticated.message
        guard try checkView(prePrepare.view, Verified(checked: .prePrepare(prePrepare), authenticator: authenticated.authenticator,
                                                      requestsUnverified: requestsUnverified))
        else { return }
        guard prePrepare.sender == primary else { throw .notFromPrimary(prePrepare.sender, primary: primary) }
        try checkWatermarks(prePrepare.sequence)
        try checkBatch(prePrepare)
        if let accepted = log[prePrepare.sequence]?.prePrepare {
            // A primary that sends two different pre-prepares for (v, s) equivocates.
            guard accepted.message.digest == prePrepare.digest else { throw .equivocation(prePrepare.sender, prePrepare.sequence) }
            // The batch of a re-proposal we accepted from a NEW-VIEW by its digest: V vouches for it.
            guard log[prePrepare.sequence]?.batch == nil else { throw .duplicate }
            attachBatch(prePrepare.requests, at: prePrepare.sequence, into: &actions)
            return
        }
        acceptPrePrepare(Authenticated(prePrepare.header, authenticator: authenticated.authenticator), batch: prePrepare.requests,
                         vouched: !requestsUnverified, into: &actions)
    }

    /// Logs a pre-prepare (from the primary, or from O in a NEW-VIEW) and, as a backup, prepares it.
    /// - Parameters:
    ///   - batch: the requests `authenticated` names (checked by the caller), or nil if this replica does
    ///     not hold them (a re-proposal in O): it votes on the digest and fetches them before executing.
    ///   - vouched: this replica authenticated every request of the batch itself (or, for O, a prepared
    ///     certificate proves them). Otherwise the backup waits for f other backups to prepare.
    mutating func acceptPrePrepare(_ authenticated: Authenticated<PrePrepareHeader>, batch: [Request]?, vouched: Bool = true,
                                   into actions: inout [PBFTAction]) {
        let sequence = authenticated.message.sequence
        log[sequence, default: Slot()].prePrepare = authenticated
        log[sequence, default: Slot()].batch = batch
        // `vouched` in the record means "our PREPARE went out" (a replay counts it as sent and repeats it): not so
        // in the view this replica was restored in, where `prepare` sends none (else a second restart in that view
        // would send one, possibly the second PREPARE for the slot).
        let prepares = vouched && view != restoredView
        persist(.prePrepare(authenticated, batch: batch, vouched: prepares), into: &actions)
        if let batch { viewChange.hold(batch, digest: authenticated.message.digest, at: sequence) }
        if vouched {
            prepare(sequence, into: &actions)
        } else {
            log[sequence, default: Slot()].awaitsVouchers = true
            actions.append(.observe(.awaitingVouchers(sequence)))
        }
        advance(sequence, into: &actions)
    }

    /// The backup accepts the batch of its slot `sequence`: it now waits for these requests to execute
    /// (its timer watches the primary) and sends its PREPARE.
    mutating func prepare(_ sequence: SequenceNumber, into actions: inout [PBFTAction]) {
        guard let prePrepare = log[sequence]?.prePrepare?.message else { return }
        for request in log[sequence]?.batch ?? [] {
            noteWaiting(request)
        }
        // Recovering: no vote (`resumeVoting` sends it once that is safe). Restored from disk in this view: no
        // PREPARE either (the `prePrepare` records are lazy: one it sent before the crash may be lost, so it
        // could otherwise vote twice for the slot).
        guard !recovery.active, view != restoredView else { return }
        if prePrepare.sender != id {
            let prepare = Prepare(view: view, sequence: sequence, digest: prePrepare.digest, sender: id)
            log[sequence, default: Slot()].prepares[id] = Authenticated(prepare, authenticator: [])
            actions.append(.broadcast(.prepare(prepare)))
        }
    }

    /// PREPAREs come from backups only; the first one per sender and slot counts.
    mutating func receivePrepare(_ authenticated: Authenticated<Prepare>, into actions: inout [PBFTAction]) throws(Rejection) {
        let prepare = authenticated.message
        guard try checkView(prepare.view, Verified(checked: .prepare(prepare), authenticator: authenticated.authenticator)) else { return }
        guard prepare.sender != primary else { throw .prepareFromPrimary(prepare.sender) }
        try checkWatermarks(prepare.sequence)
        if let earlier = log[prepare.sequence]?.prepares[prepare.sender] {
            throw earlier.message.digest == prepare.digest ? .duplicate : .equivocation(prepare.sender, prepare.sequence)
        }
        log[prepare.sequence, default: Slot()].prepares[prepare.sender] = authenticated
        advance(prepare.sequence, into: &actions)
    }

    /// COMMITs come from any replica; the first one per sender and slot counts.
    mutating func receiveCommit(_ commit: Commit, into actions: inout [PBFTAction]) throws(Rejection) {
        guard try checkView(commit.view, Verified(checked: .commit(commit))) else { return }
        try checkWatermarks(commit.sequence)
        if let earlier = log[commit.sequence]?.commits[commit.sender] {
            throw earlier == commit.digest ? .duplicate : .equivocation(commit.sender, commit.sequence)
        }
        log[commit.sequence, default: Slot()].commits[commit.sender] = commit.digest
        advance(commit.sequence, into: &actions)
    }

    /// Our COMMIT for a slot that just prepared (after its `prepared` record): counted in our own certificate
    /// and broadcast; never while recovering (`resumeVoting` sends it then).
    func sendCommit(_ sequence: SequenceNumber, digest: Digest, slot: inout Slot, into actions: inout [PBFTAction]) {
        guard !recovery.active else { return }
        slot.commits[id] = digest
        actions.append(.broadcast(.commit(Commit(view: view, sequence: sequence, digest: digest, sender: id))))
    }

    /// Moves a slot forward as far as its certificates allow:
    /// prepared = pre-prepare + 2f matching prepares from distinct backups (quorum - 1 in general);
    /// committed-local = prepared + a quorum (2f+1) of matching commits, our own included.
    mutating func advance(_ sequence: SequenceNumber, into actions: inout [PBFTAction]) {
        guard let waiting = log[sequence], let prePrepare = waiting.prePrepare else { return }
        let digest = prePrepare.message.digest
        if waiting.awaitsVouchers {
            // A batch we could not authenticate ourselves: once f other backups prepared it, the primary and
            // they are f+1 replicas, so at least one correct replica authenticated every request in it.
            let vouchers = waiting.prepares.values.reduce(0) { $0 + ($1.message.sender != id && $1.message.digest == digest ? 1 : 0) }
            guard vouchers >= configuration.weakQuorumSize - 1 else { return }
            log[sequence]?.awaitsVouchers = false
            actions.append(.observe(.vouchedFor(sequence)))
            prepare(sequence, into: &actions)
        }
        guard var slot = log[sequence] else { return }
        // Count first (this runs for every PREPARE and COMMIT); build the certificate once, when prepared.
        let prepareCount = testingIgnoreDigestsInQuorums
            ? slot.prepares.count : slot.prepares.values.reduce(0) { $0 + ($1.message.digest == digest ? 1 : 0) }
        if !slot.isPrepared, prepareCount >= configuration.quorumSize - 1 {
            slot.isPrepared = true
            // Keep the proof: a later VIEW-CHANGE must carry it.
            // Exactly the quorum's 2f PREPAREs: more would only make every VIEW-CHANGE larger.
            let prepares = testingIgnoreDigestsInQuorums
                ? Array(slot.prepares.values.sorted { $0.message.sender < $1.message.sender }.prefix(configuration.quorumSize - 1))
                : Array(slot.preparesMatching(digest).prefix(configuration.quorumSize - 1))
            let certificate = PreparedCertificate(prePrepare: prePrepare, prepares: prepares)
            viewChange.preparedCertificates[sequence] = certificate
            persist(.prepared(certificate), into: &actions)
            actions.append(.observe(.prepared(sequence)))
            sendCommit(sequence, digest: digest, slot: &slot, into: &actions)
        }
        let commits = testingIgnoreDigestsInQuorums ? slot.commits.count : Slot.count(slot.commits, matching: digest)
        if slot.isPrepared, !slot.isCommitted, commits >= configuration.quorumSize {
            slot.isCommitted = true
            persist(.committed(sequence), into: &actions)
            actions.append(.observe(.committed(sequence)))
        }
        log[sequence] = slot
        if slot.isCommitted {
            scheduleExecution(into: &actions)
        } else if slot.isPrepared, sequence == (tentative.last?.sequence ?? lastScheduled).next {
            scheduleTentativeExecution(into: &actions)
        }
    }

    /// Stores the batch of a slot whose pre-prepare we accepted by digest only; the caller has checked
    /// that `requests` is the batch the slot's digest names. Execution may continue.
    mutating func attachBatch(_ requests: [Request], at sequence: SequenceNumber, into actions: inout [PBFTAction]) {
        guard let digest = log[sequence]?.prePrepare?.message.digest, log[sequence]?.batch == nil else { return }
        log[sequence]?.batch = requests
        persist(.batch(sequence, requests), into: &actions)
        viewChange.hold(requests, digest: digest, at: sequence)
        for request in requests { noteWaiting(request) }
        actions.append(.observe(.batchFetched(sequence)))
        scheduleExecution(into: &actions)
    }
}
