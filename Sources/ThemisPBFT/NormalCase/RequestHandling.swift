import ThemisCore
import ThemisProtocolKit

/// Client requests: the reply cache, relaying to the primary, and batching at the primary
/// (PBFT section 4.2, steps 1-2).
extension PBFTReplica {
    public mutating func submit(_ request: Verified<Request>, into actions: inout [PBFTAction]) throws(Rejection) {
        let request = request.message
        guard try admit(request, into: &actions) else { return }
        noteWaiting(request)
        guard status == .normal else { return }  // re-proposed or relayed when the new view starts
        if isPrimary {
            try enqueue(request)
        } else {
            relay(request, into: &actions)
        }
    }

    /// A backup relayed a client's request to us because it believes we are the primary.
    mutating func receiveRelayedRequest(_ request: Request, into actions: inout [PBFTAction]) throws(Rejection) {
        guard isPrimary, status == .normal else { throw .notPrimary(primary: primary) }
        guard try admit(request, into: &actions) else { return }
        noteWaiting(request)
        try enqueue(request)
    }

    /// The checks every replica applies to a request: size, and exactly-once against the client table.
    /// - Returns: false if the request needs no further handling (already executed or being executed).
    mutating func admit(_ request: Request, into actions: inout [PBFTAction]) throws(Rejection) -> Bool {
        guard request.operation.count <= limits.operationBytesMax else {
            throw .operationTooLarge(request.operation.count)
        }
        let lastExecuted = clientTable.lastExecuted(request.client)
        if request.timestamp < lastExecuted {
            throw .staleTimestamp(request.client, request.timestamp, lastExecuted: lastExecuted)
        }
        if let reply = clientTable.cachedReply(request.client, request.timestamp) {
            // A retransmission of the last executed request: the client lost our reply.
            actions.append(.reply(reply))
            actions.append(.observe(.cachedReplyResent(request.client, request.timestamp)))
            return false
        }
        if request.timestamp <= clientTable.lastScheduled(request.client) {
            return false  // ordered already; the reply follows when the application is done
        }
        if clientTable.lastExecuted(request.client) == .zero && clientTable.count >= limits.clientsMax {
            throw .tooManyClients
        }
        return true
    }

    /// Queues a request at the primary unless it is already queued or proposed. At most one request per
    /// client waits in the queue (a correct client has one outstanding request): a newer one is refused
    /// until the queued one is proposed, and the client retransmits it. The queue is first come, first
    /// served, so with one entry per client batches take the clients in turn: one client sending every
    /// timestamp it likes can no longer fill the queue and starve the others (issue 9, finding 5).
    mutating func enqueue(_ request: Request) throws(Rejection) {
        if let proposed = proposedTimestamps[request.client], request.timestamp <= proposed {
            return  // a retransmission of a request that is already on its way
        }
        guard !queuedClients.contains(request.client) else { throw .clientRequestQueued(request.client) }
        guard pendingRequests.count < limits.pendingRequestsMax else { throw .overloaded }
        proposedTimestamps[request.client] = request.timestamp
        queuedClients.insert(request.client)
        pendingRequests.append(request)
    }

    /// A backup sends the request to the primary, once per client timestamp.
    mutating func relay(_ request: Request, into actions: inout [PBFTAction]) {
        // Once per client timestamp, unless the client retransmits after a while: the relay may have
        // been lost, and a lost relay must not cost a view change.
        if let relayed = relayedTimestamps[request.client], request.timestamp < relayed.timestamp
            || (request.timestamp == relayed.timestamp && now < relayed.tick + settings.requestTimeoutTicks / 4)
        {
            return
        }
        relayedTimestamps[request.client] = (request.timestamp, now)
        actions.append(.send(.request(request, relayedBy: id), to: primary))
        actions.append(.observe(.requestRelayed(request.client, request.timestamp, to: primary)))
    }

    /// Batches that are proposed but not yet handed to the application.
    var batchesInFlight: UInt64 { lastProposed.rawValue - min(lastProposed.rawValue, lastScheduled.rawValue) }

    /// The primary closes a batch when requests wait, the window allows, and either nothing is in flight
    /// or a full batch (`batchRequestsMax`) is ready and the pipeline (`pipelineDepthMax`) has room: under
    /// light load a batch holds one request, under heavy load batches grow while the previous one commits.
    mutating func proposeBatches(into actions: inout [PBFTAction]) {
        guard isPrimary, status == .normal, view != restoredView, !recovery.active else { return }
        while !pendingRequests.isEmpty,
            batchesInFlight < UInt64(limits.pipelineDepthMax),
            lastProposed.next <= highWatermark
        {
            // Only full batches are pipelined: a partial batch waits until nothing is in flight and grows
            // meanwhile. (Measured on 2 cores with 4 replicas: +22-25% throughput at 10 and 40 clients over
            // proposing a partial batch whenever the pipeline has room; see README, Performance.)
            guard batchesInFlight == 0 || pendingRequests.count >= limits.batchRequestsMax else { break }
            let requests = pendingRequests.popFirst(limits.batchRequestsMax, bytesMax: limits.batchBytesMax)
            for request in requests { queuedClients.remove(request.client) }
            propose(requests, into: &actions)
        }
        // Nothing to order and a replica recovering: null batches, so that the cluster reaches its target.
        if let goal = fillGoal {
            while lastProposed < goal, batchesInFlight < UInt64(limits.pipelineDepthMax), lastProposed.next <= highWatermark {
                propose([], into: &actions)
            }
        }
    }

    private mutating func propose(_ requests: [Request], into actions: inout [PBFTAction]) {
        let sequence = lastProposed.next
        lastProposed = sequence
        let prePrepare = PrePrepare(view: view, sequence: sequence, requests: requests, sender: id)
        log[sequence, default: Slot()].prePrepare = Authenticated(prePrepare.header, authenticator: [])
        log[sequence, default: Slot()].batch = requests
        persist(.proposed(prePrepare), into: &actions)
        viewChange.hold(requests, digest: prePrepare.digest, at: sequence)
        actions.append(.broadcast(.prePrepare(prePrepare)))
        actions.append(.observe(.batchProposed(sequence, requests: requests.count)))
    }
}
