import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

/// What a PBFT core holds in memory, part by part, and the bound on it that holds whatever the core's
/// peers and clients send (issue 9: "a replica's memory is bounded by a formula of `Limits`").
///
/// Both use one size model, so the bound is checkable: a request costs `requestOverhead` bytes plus its
/// operation and authenticator; a vote (PREPARE, CHECKPOINT, VIEW-CHANGE proof entry) `entryOverhead`
/// plus its authenticator; a slot `slotOverhead`; a COMMIT or a per-client record `recordOverhead`. The
/// overheads over-state what Swift allocates for the fixed fields (ids, numbers, 32-byte digests,
/// dictionary entries), so the model is an upper estimate of the payload; the allocator's own slack
/// comes on top and is part of the process figure, not of this model.
public struct RetainedBytes: Hashable, Sendable, CustomStringConvertible {
    public static let requestOverhead = SizeModel.requestOverhead
    public static let entryOverhead = SizeModel.entryOverhead
    public static let slotOverhead = SizeModel.slotOverhead
    public static let recordOverhead = SizeModel.recordOverhead

    /// The message log (h, h + L]: headers, batches, PREPAREs and COMMITs; and batches handed to the
    /// application and not yet reported back.
    public var log = 0
    /// Requests queued at the primary (and the queue's consumed prefix until it is compacted), the
    /// per-client timestamps of the primary and the backups.
    public var requests = 0
    /// The client table: last reply per client.
    public var clients = 0
    /// Checkpoint votes in the window, own checkpoint digests, the stable proof.
    public var checkpoints = 0
    /// Requests being timed, prepared certificates, batches held across views, VIEW-CHANGEs received,
    /// messages for the next view.
    public var viewChange = 0
    /// Own checkpoint states (served to others), far votes, a fetch in progress, fetched batches' votes.
    public var stateTransfer = 0

    public init() {}

    public var total: Int { log + requests + clients + checkpoints + viewChange + stateTransfer }

    /// The same parts in the framework's form (the memory bound and the simulator's memory checker).
    public var byteParts: ByteParts {
        ByteParts(parts.map { ByteParts.Part(name: $0.name, bytes: $0.bytes) })
    }

    public var parts: [(name: String, bytes: Int)] {
        [("log", log), ("requests", requests), ("clients", clients), ("checkpoints", checkpoints),
         ("viewChange", viewChange), ("stateTransfer", stateTransfer)]
    }

    public var description: String {
        parts.map { "\($0.name) \($0.bytes)" }.joined(separator: ", ") + ", total \(total)"
    }

    static func bytes(_ request: Request) -> Int { SizeModel.bytes(request) }
    static func bytes(_ requests: [Request]) -> Int { SizeModel.bytes(requests) }
    static func entry(_ authenticator: [UInt8]) -> Int { SizeModel.entry(authenticator) }

    static func bytes(_ viewChange: ViewChange) -> Int {
        var total = slotOverhead + viewChange.checkpointProof.reduce(0) { $0 + entry($1.authenticator) }
        for certificate in viewChange.prepared {
            total += bytes(certificate)
        }
        return total
    }

    static func bytes(_ newView: NewView) -> Int {
        newView.viewChanges.reduce(slotOverhead) { $0 + bytes($1.message) + $1.authenticator.count }
            + newView.prePrepares.reduce(0) { $0 + slotOverhead + $1.authenticator.count }
    }

    static func bytes(_ certificate: PreparedCertificate) -> Int {
        slotOverhead + certificate.prePrepare.authenticator.count + certificate.prepares.reduce(0) { $0 + entry($1.authenticator) }
    }

    /// What `message` holds by this size model (a driver bounds its input queue with it).
    public static func estimate(_ message: PBFTMessage) -> Int { bytes(message) }
    public static func estimate(_ request: Request) -> Int { bytes(request) }

    static func bytes(_ message: PBFTMessage) -> Int {
        switch message {
        case .request(let request, _): return entryOverhead + bytes(request)
        case .prePrepare(let prePrepare): return slotOverhead + bytes(prePrepare.requests)
        case .prepare, .commit, .checkpoint, .fetchState, .fetchBatches, .recoveryQuery: return entryOverhead
        case .recoveryReply(let reply): return reply.checkpointProof.reduce(slotOverhead) { $0 + entry($1.authenticator) }
        case .stateChunk(let chunk): return slotOverhead + chunk.bytes.count + chunk.chunkDigests.count * Digest.byteCount
        case .committedBatches(let message): return message.batches.reduce(slotOverhead) { $0 + slotOverhead + bytes($1.requests) }
        case .viewChange(let viewChange): return bytes(viewChange)
        case .newView(let newView):
            return bytes(newView)
        case .newViewRelay(let relay):
            return bytes(relay.newView.message) + relay.newView.authenticator.count
        }
    }
}

extension PBFTReplica {
    /// What this core holds now, by the size model of `RetainedBytes`.
    public var retainedBytes: RetainedBytes {
        typealias R = RetainedBytes
        var retained = RetainedBytes()
        for slot in log.values {
            retained.log += R.slotOverhead + (slot.prePrepare?.authenticator.count ?? 0) + (slot.batch.map(R.bytes) ?? 0)
                + slot.prepares.values.reduce(0) { $0 + R.entry($1.authenticator) } + slot.commits.count * R.recordOverhead
        }
        retained.log += executing.reduce(0) { $0 + R.slotOverhead + R.bytes($1.requests) }

        retained.requests = pendingRequests.retainedBytes
            + (queuedClients.count + proposedTimestamps.count + relayedTimestamps.count) * R.recordOverhead

        retained.clients = clientTable.retainedBytes

        retained.checkpoints = checkpoints.votes.values.reduce(0) { sum, votes in
            sum + R.recordOverhead + votes.values.reduce(0) { $0 + R.entry($1.authenticator) }
        } + checkpoints.own.count * R.recordOverhead + checkpoints.stableProof.reduce(0) { $0 + R.entry($1.authenticator) }

        retained.viewChange = viewChange.waiting.values.reduce(0) { $0 + R.recordOverhead + R.bytes($1) }
            + viewChange.preparedCertificates.values.reduce(0) { $0 + R.bytes($1) }
            + viewChange.heldBatches.values.reduce(0) { sum, held in held.reduce(sum) { $0 + R.slotOverhead + R.bytes($1.requests) } }
            + viewChange.received.values.reduce(0) { $0 + R.bytes($1.message) + $1.authenticator.count }
            + viewChange.future.reduce(0) { $0 + R.bytes($1.message) + $1.authenticator.count }
            + (viewChange.acceptedNewView.map { R.bytes($0.message) + $0.authenticator.count } ?? 0)

        var transfer = stateTransfer.snapshots.values.reduce(0) { $0 + R.recordOverhead + $1.count }
        transfer += stateTransfer.chunkDigests.values.reduce(0) { $0 + R.recordOverhead + $1.count * Digest.byteCount }
        transfer += (stateTransfer.fetchBudget.count + stateTransfer.deferredFetches.count) * R.entryOverhead
        transfer += stateTransfer.farVotes.values.reduce(0) { $0 + R.entry($1.authenticator) }
        if let fetch = stateTransfer.fetch {
            transfer += R.slotOverhead + fetch.received.count + (fetch.chunkDigests?.count ?? 0) * Digest.byteCount
                + fetch.proof.reduce(0) { $0 + R.entry($1.authenticator) } + fetch.peers.count * 4
        }
        if let pending = stateTransfer.pending {
            transfer += R.slotOverhead + pending.proof.reduce(0) { $0 + R.entry($1.authenticator) }
        }
        transfer += stateTransfer.batchVotes.values.reduce(0) { sum, votes in
            votes.values.reduce(sum + R.recordOverhead) { $0 + R.slotOverhead + R.bytes($1.requests) }
        }
        retained.stateTransfer = transfer
        return retained
    }

    /// The most a core of this configuration can hold, whatever its peers and clients send, by the size
    /// model of `RetainedBytes`.
    /// - Parameters:
    ///   - authenticatorBytes: the largest authenticator that verifies in the cluster's scheme (a MAC
    ///     vector of 32 n bytes, a 64-byte signature, 256 for RSA-2048); larger ones never reach the core.
    ///   - stateBytes: the largest state (application snapshot plus client table) the replica's own
    ///     application produces; at most `limits.stateBytesMax` for a state transfer to work.
    public static func retainedBytesBound(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticatorBytes: Int, stateBytes: Int
    ) -> RetainedBytes {
        typealias R = RetainedBytes
        let n = configuration.replicaCount
        let window = Int(settings.watermarkWindow)
        // Checkpoint sequence numbers in [h, h + L].
        let checkpointsInWindow = window / Int(settings.checkpointInterval) + 1
        let auth = authenticatorBytes
        let request = R.requestOverhead + limits.operationBytesMax + auth
        // `checkBatch`: at most batchRequestsMax requests of at most batchBytesMax by the same estimate,
        // or a single request of any allowed size.
        let batch = max(min(limits.batchBytesMax, limits.batchRequestsMax * request), request)
        let vote = R.entryOverhead + auth
        let certificate = R.slotOverhead + auth + n * vote
        let viewChange = R.slotOverhead + n * vote + window * certificate
        let clients = limits.clientsMax
        let queued = min(limits.pendingRequestsMax, clients)

        var bound = RetainedBytes()
        bound.log = window * (R.slotOverhead + auth + batch + n * vote + n * R.recordOverhead)
            + window * (R.slotOverhead + batch)
        // The queue keeps its consumed prefix until it is longer than 1024 and than the live part.
        bound.requests = (2 * queued + 1024) * request + (queued + 2 * clients) * R.recordOverhead
        bound.clients = clients * (2 * R.recordOverhead + R.entryOverhead + limits.resultBytesMax + auth)
        bound.checkpoints = checkpointsInWindow * (R.recordOverhead + n * vote) + checkpointsInWindow * R.recordOverhead + n * vote
        // Next-view messages: per sender the byte budget of `checkView`, counted in this size model.
        let futurePerSender = ViewChangeState.futureBytesPerSenderMax(limits)
        bound.viewChange = clients * (R.recordOverhead + request)
            + window * certificate
            + window * ViewChangeState.heldBatchesPerSequenceMax * (R.slotOverhead + batch)
            + n * (viewChange + auth)
            + n * futurePerSender
            // The NEW-VIEW of the current view, kept to relay: a quorum of VIEW-CHANGEs and O.
            + R.slotOverhead + auth + configuration.quorumSize * (viewChange + auth) + window * (R.slotOverhead + auth)
        let chunkDigests = limits.stateChunksMax * Digest.byteCount
        bound.stateTransfer = checkpointsInWindow * (2 * R.recordOverhead + stateBytes + chunkDigests)
            + 2 * n * R.entryOverhead + n * vote
            + (R.slotOverhead + limits.stateBytesMax + chunkDigests + n * vote + n * 4)
            + (R.slotOverhead + n * vote)
            + window * (R.recordOverhead + n * (R.slotOverhead + batch))
        return bound
    }
}
