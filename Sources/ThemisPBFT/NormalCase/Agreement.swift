import ThemisCore

/// The three-phase agreement: PRE-PREPARE, PREPARE, COMMIT (PBFT section 4.2, steps 2-4).
extension PBFTReplica {
    /// A backup accepts a pre-prepare only if it is in view v and not changing view, s is within the
    /// watermarks, the batch matches the digest, and it has not accepted a different pre-prepare for (v, s).
    mutating func receivePrePrepare(_ prePrepare: PrePrepare, into actions: inout [Action<PBFTMessage>]) throws(Rejection) {
        try checkView(prePrepare.view)
        guard prePrepare.sender == primary else { throw .notFromPrimary(prePrepare.sender, primary: primary) }
        try checkWatermarks(prePrepare.sequence)
        guard !prePrepare.requests.isEmpty, prePrepare.requests.count <= limits.batchRequestsMax else {
            throw .invalidBatchSize(prePrepare.requests.count)
        }
        for request in prePrepare.requests where request.operation.count > limits.operationBytesMax {
            throw .operationTooLarge(request.operation.count)
        }
        guard Request.batchDigest(prePrepare.requests) == prePrepare.digest else {
            throw .batchDigestMismatch(prePrepare.sequence)
        }
        let sequence = prePrepare.sequence
        if let accepted = log[sequence]?.prePrepare {
            // A primary that sends two different pre-prepares for (v, s) equivocates.
            throw accepted.digest == prePrepare.digest ? .duplicate : .equivocation(prePrepare.sender, sequence)
        }
        log[sequence, default: Slot()].prePrepare = prePrepare
        let prepare = Prepare(view: view, sequence: sequence, digest: prePrepare.digest, sender: id)
        log[sequence, default: Slot()].prepares[id] = prePrepare.digest
        actions.append(.broadcast(.prepare(prepare)))
        advance(sequence, into: &actions)
    }

    /// PREPAREs come from backups only; the first one per sender and slot counts.
    mutating func receivePrepare(_ prepare: Prepare, into actions: inout [Action<PBFTMessage>]) throws(Rejection) {
        try checkView(prepare.view)
        guard prepare.sender != primary else { throw .prepareFromPrimary(prepare.sender) }
        try checkWatermarks(prepare.sequence)
        if let earlier = log[prepare.sequence]?.prepares[prepare.sender] {
            throw earlier == prepare.digest ? .duplicate : .equivocation(prepare.sender, prepare.sequence)
        }
        log[prepare.sequence, default: Slot()].prepares[prepare.sender] = prepare.digest
        advance(prepare.sequence, into: &actions)
    }

    /// COMMITs come from any replica; the first one per sender and slot counts.
    mutating func receiveCommit(_ commit: Commit, into actions: inout [Action<PBFTMessage>]) throws(Rejection) {
        try checkView(commit.view)
        try checkWatermarks(commit.sequence)
        if let earlier = log[commit.sequence]?.commits[commit.sender] {
            throw earlier == commit.digest ? .duplicate : .equivocation(commit.sender, commit.sequence)
        }
        log[commit.sequence, default: Slot()].commits[commit.sender] = commit.digest
        advance(commit.sequence, into: &actions)
    }

    /// Moves a slot forward as far as its certificates allow:
    /// prepared = pre-prepare + 2f matching prepares from distinct backups (quorum - 1 in general);
    /// committed-local = prepared + a quorum (2f+1) of matching commits, our own included.
    mutating func advance(_ sequence: SequenceNumber, into actions: inout [Action<PBFTMessage>]) {
        guard var slot = log[sequence], let prePrepare = slot.prePrepare else { return }
        let digest = prePrepare.digest
        if !slot.isPrepared, Slot.count(slot.prepares, matching: digest) >= configuration.quorumSize - 1 {
            slot.isPrepared = true
            slot.commits[id] = digest
            actions.append(.observe(.prepared(sequence)))
            actions.append(.broadcast(.commit(Commit(view: view, sequence: sequence, digest: digest, sender: id))))
        }
        if slot.isPrepared, !slot.isCommitted, Slot.count(slot.commits, matching: digest) >= configuration.quorumSize {
            slot.isCommitted = true
            actions.append(.observe(.committed(sequence)))
        }
        log[sequence] = slot
        if slot.isCommitted {
            scheduleExecution(into: &actions)
        }
    }
}
