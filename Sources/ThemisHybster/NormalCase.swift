import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

/// Requests, PREPARE, COMMIT and execution in order-number order.
extension HybsterReplica {
    public mutating func submit(_ verified: Verified<Request>, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        let request = verified.message
        guard try admit(request, into: &actions) else { return }
        noteWaiting(request)
        guard status == .normal, participates else { return }
        if isPrimary {
            try enqueue(request)
        } else {
            actions.append(.send(.request(request, relayedBy: id), to: primary))
            actions.append(.observe(.requestRelayed(request.client, request.timestamp, to: primary)))
        }
    }

    mutating func receiveRelayedRequest(_ request: Request, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard isPrimary, status == .normal, participates else { throw .notPrimary(primary: primary) }
        guard try admit(request, into: &actions) else { return }
        noteWaiting(request)
        try enqueue(request)
    }

    /// Size and exactly-once checks against the client table.
    /// - Returns: false if the request needs nothing more (answered from the cache, or already ordered).
    mutating func admit(_ request: Request, into actions: inout [HybsterAction]) throws(HybsterRejection) -> Bool {
        guard request.operation.count <= limits.operationBytesMax else { throw .operationTooLarge(request.operation.count) }
        let executed = clientTable.lastExecuted(request.client)
        guard request.timestamp >= executed else { throw .staleTimestamp(request.client, request.timestamp, lastExecuted: executed) }
        if let reply = clientTable.cachedReply(request.client, request.timestamp) {
            actions.append(.reply(reply))
            actions.append(.observe(.cachedReplyResent(request.client, request.timestamp)))
            return false
        }
        if request.timestamp <= clientTable.lastScheduled(request.client) { return false }
        if executed == .zero && clientTable.count >= limits.clientsMax { throw .tooManyClients }
        return true
    }

    /// At most one queued request per client; the queue is bounded (backpressure).
    mutating func enqueue(_ request: Request) throws(HybsterRejection) {
        if let proposed = proposedTimestamps[request.client], request.timestamp <= proposed { return }
        guard !queuedClients.contains(request.client) else { throw .clientRequestQueued(request.client) }
        guard pendingRequests.count < limits.pendingRequestsMax else { throw .overloaded }
        queuedClients.insert(request.client)
        pendingRequests.append(request)
    }

    /// The primary closes batches while its pipeline has room (P times the PBFT depth: one per pillar).
    mutating func proposeBatches(into actions: inout [HybsterAction]) {
        guard isPrimary, status == .normal, participates else { return }
        let depth = UInt64(limits.pipelineDepthMax) * pillarCount
        while !pendingRequests.isEmpty, lastProposed.rawValue - min(lastProposed.rawValue, lastExecuted.rawValue) < depth,
              lastProposed.next <= highWatermark {
            let order = lastProposed.next
            let requests = pendingRequests.popFirst(limits.batchRequestsMax, bytesMax: limits.batchBytesMax)
            let digest = Request.batchDigest(requests)
            let certifiedDigest = HybsterDigests.prepare(view: view, order: order, digest: digest, sender: id)
            guard let certificate = certify(certifiedDigest, order: order, into: &actions) else { return }
            for request in requests {
                queuedClients.remove(request.client)
                proposedTimestamps[request.client] = max(proposedTimestamps[request.client] ?? .zero, request.timestamp)
            }
            lastProposed = order
            let header = PrepareHeader(view: view, order: order, digest: digest, sender: id, certificate: certificate)
            log[order, default: HybsterSlot()].prepare = header
            log[order, default: HybsterSlot()].batch = requests
            persist(.prepare(HybsterPrepare(header: header, requests: requests), vouched: true), into: &actions)
            actions.append(.observe(.batchProposed(order, requests: requests.count)))
            actions.append(.broadcast(.prepare(HybsterPrepare(header: header, requests: requests))))
            advance(order, into: &actions)
        }
    }

    mutating func receivePrepare(_ prepare: HybsterPrepare, requestsUnverified: Bool, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        let header = prepare.header
        try checkNormalCase(header.view)
        guard header.sender == primary else { throw .notFromPrimary(header.sender, primary: primary) }
        try checkWindow(header.order)
        try checkOrdered(header.certificate, by: header.sender, view: header.view, order: header.order)
        try checkBatch(prepare)
        if let known = log[header.order]?.prepare {
            // The counter makes a second PREPARE for (v, o) impossible: this is a repeat.
            guard known.digest == header.digest, log[header.order]?.batch == nil else { throw .duplicate }
            attachBatch(prepare.requests, at: header.order, into: &actions)
            return
        }
        log[header.order, default: HybsterSlot()].prepare = header
        log[header.order, default: HybsterSlot()].batch = prepare.requests
        log[header.order, default: HybsterSlot()].awaitsVouchers = requestsUnverified
        persist(.prepare(prepare, vouched: !requestsUnverified), into: &actions)
        if !requestsUnverified { for request in prepare.requests { noteWaiting(request) } }
        if requestsUnverified { actions.append(.observe(.awaitingVouchers(header.order))) }
        commitInOrder(pillar: pillar(of: header.order), into: &actions)
        advance(header.order, into: &actions)
    }

    /// 1 to `batchRequestsMax` requests within the size limits, matching the digest (an empty batch is a
    /// null request and only comes with a NEW-VIEW re-proposal).
    func checkBatch(_ prepare: HybsterPrepare) throws(HybsterRejection) {
        let requests = prepare.requests
        guard requests.count <= limits.batchRequestsMax else { throw .invalidBatchSize(requests.count) }
        var bytes = 0
        for request in requests {
            guard request.operation.count <= limits.operationBytesMax else { throw .operationTooLarge(request.operation.count) }
            bytes += request.operation.count + request.authenticator.count + 64
        }
        guard requests.count <= 1 || bytes <= limits.batchBytesMax else { throw .batchTooLarge(bytes: bytes) }
        guard Request.batchDigest(requests) == prepare.header.digest else { throw .batchDigestMismatch(prepare.header.order) }
    }

    /// A backup certifies COMMITs on a pillar in order-number order, each once its PREPARE is here (and
    /// vouched for), never skipping one above its stable checkpoint: a VIEW-CHANGE's continuing
    /// certificate then proves its list of PREPAREs complete.
    mutating func commitInOrder(pillar: Int, into actions: inout [HybsterAction]) {
        guard participates, status == .normal, !isPrimary else { return }
        while true {
            let order = nextOrder(pillar: pillar)
            guard order <= highWatermark, let slot = log[order], let header = slot.prepare, slot.commits[id] == nil else { return }
            if slot.awaitsVouchers {
                let vouchers = slot.commits.reduce(0) { $0 + ($1.key != id && $1.key != header.sender && $1.value == header.digest ? 1 : 0) }
                guard vouchers >= configuration.faultsTolerated else { return }
                log[order]?.awaitsVouchers = false
                for request in slot.batch ?? [] { noteWaiting(request) }
            }
            let digest = HybsterDigests.commit(view: view, order: order, digest: header.digest, sender: id)
            guard let certificate = certify(digest, order: order, into: &actions) else { return }
            let commit = HybsterCommit(view: view, order: order, digest: header.digest, sender: id, certificate: certificate)
            log[order]?.commits[id] = header.digest
            log[order]?.ownCommit = commit
            persist(.commit(commit), into: &actions)
            actions.append(.broadcast(.commit(commit)))
            advance(order, into: &actions)
        }
    }

    /// The next order number of `pillar` this replica certifies: the first above both its last certified
    /// one and the stable checkpoint.
    func nextOrder(pillar: Int) -> SequenceNumber {
        let start = max(certified[pillar], lowWatermark).rawValue + 1
        let offset = (UInt64(pillar) + pillarCount - start % pillarCount) % pillarCount
        return SequenceNumber(start + offset)
    }

    mutating func receiveCommit(_ commit: HybsterCommit, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        try checkNormalCase(commit.view)
        try checkWindow(commit.order)
        try checkOrdered(commit.certificate, by: commit.sender, view: commit.view, order: commit.order)
        guard commit.sender != primary else { throw .notFromPrimary(commit.sender, primary: primary) }
        if let earlier = log[commit.order]?.commits[commit.sender] {
            throw earlier == commit.digest ? .duplicate : .equivocation(commit.sender, commit.order)
        }
        log[commit.order, default: HybsterSlot()].commits[commit.sender] = commit.digest
        if log[commit.order]?.awaitsVouchers == true { commitInOrder(pillar: pillar(of: commit.order), into: &actions) }
        advance(commit.order, into: &actions)
    }

    /// Committed = the primary's PREPARE plus COMMITs (or NEW-VIEW-ACKs) of backups for its digest, f + 1
    /// in all.
    mutating func advance(_ order: SequenceNumber, into actions: inout [HybsterAction]) {
        guard var slot = log[order], let header = slot.prepare, !slot.isCommitted else { return }
        let votes = 1 + slot.commits.reduce(0) { $0 + ($1.key != header.sender && $1.value == header.digest ? 1 : 0) }
        guard votes >= quorum else { return }
        slot.isCommitted = true
        log[order] = slot
        persist(.committed(order), into: &actions)
        actions.append(.observe(.committed(order)))
        scheduleExecution(into: &actions)
    }

    /// Stores the batch of a slot whose header arrived without it (a re-proposal); execution may continue.
    mutating func attachBatch(_ requests: [Request], at order: SequenceNumber, into actions: inout [HybsterAction]) {
        guard let header = log[order]?.prepare, log[order]?.batch == nil, Request.batchDigest(requests) == header.digest else { return }
        log[order]?.batch = requests
        persist(.batch(order, requests), into: &actions)
        for request in requests { noteWaiting(request) }
        actions.append(.observe(.prepareFetched(order)))
        scheduleExecution(into: &actions)
    }

    /// Hands every committed batch after the last scheduled one to the application, in order.
    mutating func scheduleExecution(into actions: inout [HybsterAction]) {
        guard stateTransfer.fetch == nil else { return }
        while let slot = log[lastScheduled.next], slot.isCommitted, let requests = slot.batch {
            let order = lastScheduled.next
            var fresh: [Request] = []
            fresh.reserveCapacity(requests.count)
            for request in requests where clientTable.schedule(request) { fresh.append(request) }
            let batch = ExecutionBatch(sequence: order, view: view, requests: fresh,
                                       checkpoint: order.rawValue % settings.checkpointInterval == 0)
            lastScheduled = order
            executing.append(batch)
            actions.append(.execute(batch))
        }
    }

    public mutating func executed(_ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?,
                                  into actions: inout [HybsterAction]) {
        precondition(!executing.isEmpty && executing[0].sequence == sequence,
                     "executed(\(sequence)) out of order; expected \(executing.first?.sequence.description ?? "nothing")")
        let batch = executing.removeFirst()
        precondition(results.count == batch.requests.count, "\(results.count) results for \(batch.requests.count) requests")
        lastExecuted = sequence
        for (request, result) in zip(batch.requests, results) {
            let reply = Reply(view: view, timestamp: request.timestamp, client: request.client, replica: id, result: result)
            clientTable.recordExecution(reply)
            actions.append(.reply(reply))
        }
        noteExecuted(batch.requests)
        actions.append(.observe(.executed(sequence, requests: batch.requests.count)))
        if batch.checkpoint {
            precondition(applicationSnapshot != nil, "checkpoint batch \(sequence) executed without an application snapshot")
            takeCheckpoint(sequence, applicationSnapshot: applicationSnapshot ?? [], into: &actions)
        }
        startStateTransferIfBehind(into: &actions)
        proposeBatches(into: &actions)
    }

    // MARK: Fetching a missing PREPARE or batch

    /// Any replica answers FETCH(o) with what it holds for o in its view: the PREPARE header and batch, and
    /// its own vote (its COMMIT, or its NEW-VIEW-ACK for a re-proposal). A replica whose slot does not
    /// commit asks this way, so lost votes are recovered without repeating every vote to everyone.
    mutating func serveFetch(_ fetch: HybsterFetch, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard spendBudget(of: fetch.sender) else { throw .stateUnavailable(fetch.order) }
        if fetch.order <= lowWatermark, lowWatermark > .zero {
            // Truncated here: the asker is behind our stable checkpoint and needs its state.
            actions.append(.send(.stableCheckpoint(HybsterStableCheckpoint(sequence: lowWatermark, stateDigest: checkpoints.stableDigest,
                                                                           proof: checkpoints.stableProof, sender: id)), to: fetch.sender))
            return
        }
        guard let slot = log[fetch.order], let header = slot.prepare else { throw .stateUnavailable(fetch.order) }
        if let batch = slot.batch {
            actions.append(.send(.forward(HybsterForward(prepare: HybsterPrepare(header: header, requests: batch), sender: id)), to: fetch.sender))
        }
        if let commit = slot.ownCommit {
            actions.append(.send(.commit(commit), to: fetch.sender))
        } else if let ack = viewChange.ownAck, viewChange.newView?.reproposals.contains(header) == true {
            actions.append(.send(.newViewAck(ack), to: fetch.sender))
        }
    }

    /// A forwarded PREPARE: the batch of a header we hold, or a PREPARE of this view we missed.
    mutating func receiveForward(_ forward: HybsterForward, requestsUnverified: Bool, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        let header = forward.prepare.header
        if let known = log[header.order]?.prepare, known.digest == header.digest {
            guard log[header.order]?.batch == nil else { throw .duplicate }
            guard Request.batchDigest(forward.prepare.requests) == known.digest else { throw .batchDigestMismatch(header.order) }
            attachBatch(forward.prepare.requests, at: header.order, into: &actions)
            return
        }
        try receivePrepare(forward.prepare, requestsUnverified: requestsUnverified, into: &actions)
    }

    /// Asks the others for the first order number above what is scheduled whose PREPARE or batch is
    /// missing while later ones are known (a lost message, or a re-proposal whose batch is elsewhere).
    mutating func fetchMissing(into actions: inout [HybsterAction]) {
        if let fetch = stateTransfer.fetch {
            // A peer already failed us: perhaps the others moved past this checkpoint and dropped its state.
            // Those whose stable checkpoint is at or above it answer with theirs.
            if fetch.peerIndex > 0 { actions.append(.broadcast(.fetch(HybsterFetch(order: fetch.sequence, sender: id)))) }
            return
        }
        guard let highest = log.keys.max(), highest > lastScheduled else {
            // Nothing known beyond what we scheduled, yet requests wait: perhaps the others moved on.
            if !waiting.isEmpty, executing.isEmpty { actions.append(.broadcast(.fetch(HybsterFetch(order: lastScheduled.next, sender: id)))) }
            return
        }
        var order = lastScheduled.next
        while order <= highest {
            if log[order]?.prepare == nil || log[order]?.batch == nil {
                actions.append(.broadcast(.fetch(HybsterFetch(order: order, sender: id))))
                return
            }
            order = order.next
        }
    }

    /// At most `Limits.fetchRepliesBurst` answers per peer and tick.
    mutating func spendBudget(of peer: ReplicaID) -> Bool {
        if stateTransfer.budgetTick != now {
            stateTransfer.budgetTick = now
            stateTransfer.budget = [:]
        }
        let spent = stateTransfer.budget[peer, default: 0]
        guard spent < limits.fetchRepliesBurst else { return false }
        stateTransfer.budget[peer] = spent + 1
        return true
    }
}
