import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

/// What checkpointing keeps: own states and digests, each replica's latest CHECKPOINT, the stable proof.
struct HybsterCheckpoints: Sendable {
    /// Own checkpoints above the stable one (and the stable one): digest and encoded state (served to others).
    var own: [SequenceNumber: (digest: Digest, state: [UInt8], chunks: [Digest])] = [:]
    /// Each replica's latest CHECKPOINT above the stable one (one per sender: bounded).
    var latest: [ReplicaID: HybsterCheckpoint] = [:]
    var stableDigest = CheckpointState.stateDigest(.zero, totalBytes: 0, chunkDigests: [])
    /// f + 1 matching CHECKPOINTs for the stable checkpoint (empty at 0).
    var stableProof: [HybsterCheckpoint] = []
}

/// What state transfer keeps between events.
struct HybsterStateTransfer: Sendable {
    struct Fetch: Sendable {
        let sequence: SequenceNumber
        let stateDigest: Digest
        let proof: [HybsterCheckpoint]
        let peers: [ReplicaID]
        var peerIndex = 0
        var received: [UInt8] = []
        var chunkDigests: [Digest]?
        var totalBytes: UInt64?
        var deadline: UInt64
        var peer: ReplicaID { peers[peerIndex % peers.count] }
    }

    var fetch: Fetch?
    /// A stable checkpoint above what this replica executed, waiting for execution to go idle.
    var pending: (sequence: SequenceNumber, digest: Digest, proof: [HybsterCheckpoint])?
    var budget: [ReplicaID: Int] = [:]
    var budgetTick: UInt64 = 0
}

/// Checkpoints every K order numbers with trusted MACs, stable at f + 1 matching ones; state transfer of a
/// stable checkpoint's state in chunks checked against its digest.
extension HybsterReplica {
    mutating func takeCheckpoint(_ sequence: SequenceNumber, applicationSnapshot: [UInt8], into actions: inout [HybsterAction]) {
        let state = CheckpointState(applicationSnapshot: applicationSnapshot, clientTable: clientTable).encoded()
        let chunks = CheckpointState.chunkDigests(of: state, chunkBytes: limits.stateChunkBytes)
        let digest = CheckpointState.stateDigest(sequence, totalBytes: state.count, chunkDigests: chunks)
        checkpoints.own[sequence] = (digest, state, chunks)
        actions.append(.observe(.checkpointTaken(sequence, digest)))
        // Durable mode: the shell may write the state while the others' CHECKPOINTs arrive.
        if persistsRecords, participates, sequence > lowWatermark { actions.append(.stageCheckpoint(sequence, state: state)) }
        let certifiedDigest = HybsterDigests.checkpoint(sequence: sequence, stateDigest: digest, sender: id)
        let checkpoint = HybsterCheckpoint(sequence: sequence, stateDigest: digest, sender: id,
                                           certificate: subsystems[0].trustedMAC(certifiedDigest))
        if sequence > lowWatermark { checkpoints.latest[id] = checkpoint }
        actions.append(.broadcast(.checkpoint(checkpoint)))
        checkStability(into: &actions)
    }

    mutating func receiveCheckpoint(_ checkpoint: HybsterCheckpoint, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        try Self.checkCheckpoint(checkpoint, settings: settings)
        guard checkpoint.sequence > lowWatermark else { throw .staleCheckpoint(checkpoint.sequence) }
        if let earlier = checkpoints.latest[checkpoint.sender], earlier.sequence >= checkpoint.sequence {
            throw earlier == checkpoint ? .duplicate : .staleCheckpoint(checkpoint.sequence)
        }
        checkpoints.latest[checkpoint.sender] = checkpoint
        checkStability(into: &actions)
    }

    /// A forwarded stable checkpoint above ours: adopt it (and fetch its state if we have not executed that far).
    mutating func receiveStableCheckpoint(_ stable: HybsterStableCheckpoint, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard stable.sequence > lowWatermark else { throw .staleCheckpoint(stable.sequence) }
        try validateCheckpoint(stable.sequence, digest: stable.stateDigest, proof: stable.proof)
        makeStable(stable.sequence, digest: stable.stateDigest, proof: stable.proof, into: &actions)
    }

    /// A checkpoint order number, and a trusted MAC by the sender's subsystem of pillar 0.
    static func checkCheckpoint(_ checkpoint: HybsterCheckpoint, settings: ProtocolSettings) throws(HybsterRejection) {
        guard checkpoint.sequence > .zero, checkpoint.sequence.rawValue % settings.checkpointInterval == 0 else {
            throw .notACheckpointSequence(checkpoint.sequence)
        }
        guard checkpoint.certificate.kind == .mac, checkpoint.certificate.subsystem == TrustedSubsystemID(replica: checkpoint.sender, pillar: 0) else {
            throw .certificateMismatch("checkpoint \(checkpoint.sequence.rawValue) of \(checkpoint.sender) by \(checkpoint.certificate.subsystem)")
        }
    }

    /// The highest checkpoint for which f + 1 replicas' latest CHECKPOINTs agree becomes stable.
    mutating func checkStability(into actions: inout [HybsterAction]) {
        var groups: [SequenceNumber: [Digest: [HybsterCheckpoint]]] = [:]
        for checkpoint in checkpoints.latest.values where checkpoint.sequence > lowWatermark {
            groups[checkpoint.sequence, default: [:]][checkpoint.stateDigest, default: []].append(checkpoint)
        }
        var best: (SequenceNumber, Digest, [HybsterCheckpoint])?
        for (sequence, byDigest) in groups {
            for (digest, votes) in byDigest where votes.count >= quorum && sequence > (best?.0 ?? .zero) {
                best = (sequence, digest, Array(votes.sorted { $0.sender < $1.sender }.prefix(quorum)))
            }
        }
        guard let (sequence, digest, proof) = best else { return }
        makeStable(sequence, digest: digest, proof: proof, into: &actions)
    }

    /// Advances the low watermark to a checkpoint f + 1 replicas vouch for, truncates the log, and fetches
    /// the state if this replica has not executed that far.
    mutating func makeStable(_ sequence: SequenceNumber, digest: Digest, proof: [HybsterCheckpoint], into actions: inout [HybsterAction]) {
        guard sequence > lowWatermark else { return }
        lowWatermark = sequence
        checkpoints.stableDigest = digest
        checkpoints.stableProof = proof
        checkpoints.latest = checkpoints.latest.filter { $0.value.sequence > sequence }
        checkpoints.own = checkpoints.own.filter { $0.key >= sequence }
        log = log.filter { $0.key > sequence }
        lastProposed = max(lastProposed, sequence)
        stableCheckpointUnpersisted = true
        actions.append(.observe(.checkpointStable(sequence, digest)))
        if lastScheduled < sequence {
            stateTransfer.pending = (sequence, digest, proof)
            startStateTransferIfBehind(into: &actions)
        }
        for pillar in 0..<subsystems.count { commitInOrder(pillar: pillar, into: &actions) }
        proposeBatches(into: &actions)
    }

    /// Starts fetching a pending stable checkpoint once nothing is executing (the state replaces it).
    mutating func startStateTransferIfBehind(into actions: inout [HybsterAction]) {
        guard let pending = stateTransfer.pending, executing.isEmpty else { return }
        stateTransfer.pending = nil
        guard pending.sequence > lastScheduled else { return }
        if let fetch = stateTransfer.fetch, fetch.sequence >= pending.sequence { return }
        // The proof's senders first, then everyone else: every answer is checked against the agreed digest, and
        // the senders may have restarted and lost the state since (rolling restarts, n = 3: the two that signed
        // checkpoint 56 asked each other for it forever while the third had it).
        let signers = pending.proof.map(\.sender).filter { $0 != id }
        let peers = signers + configuration.replicas.filter { $0 != id && !signers.contains($0) }
        guard !peers.isEmpty else { return }
        stateTransfer.fetch = HybsterStateTransfer.Fetch(sequence: pending.sequence, stateDigest: pending.digest, proof: pending.proof,
                                                         peers: peers, deadline: now + settings.requestTimeoutTicks)
        requestChunk(into: &actions)
    }

    mutating func requestChunk(into actions: inout [HybsterAction]) {
        guard let fetch = stateTransfer.fetch else { return }
        if fetch.received.isEmpty { actions.append(.observe(.stateTransferStarted(fetch.sequence, from: fetch.peer))) }
        actions.append(.send(.fetchState(HybsterFetchState(sequence: fetch.sequence, stateDigest: fetch.stateDigest,
                                                           offset: UInt64(fetch.received.count), sender: id)), to: fetch.peer))
    }

    mutating func serveState(_ request: HybsterFetchState, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard spendBudget(of: request.sender), let own = checkpoints.own[request.sequence], own.digest == request.stateDigest,
              request.offset <= UInt64(own.state.count)
        else { throw .stateUnavailable(request.sequence) }
        let start = Int(request.offset)
        let end = min(own.state.count, start + limits.stateChunkBytes)
        let chunk = HybsterStateChunk(sequence: request.sequence, stateDigest: request.stateDigest, totalBytes: UInt64(own.state.count),
                                      offset: request.offset, bytes: Array(own.state[start..<end]),
                                      chunkDigests: request.offset == 0 ? own.chunks : [], sender: id)
        actions.append(.send(.stateChunk(chunk), to: request.sender))
    }

    /// Checks the chunk list against the agreed digest, then each chunk against its entry; installs the
    /// state once complete. A peer whose answer does not match is replaced by the next.
    mutating func receiveStateChunk(_ chunk: HybsterStateChunk, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard var fetch = stateTransfer.fetch, chunk.sender == fetch.peer, chunk.sequence == fetch.sequence,
              chunk.stateDigest == fetch.stateDigest, chunk.offset == UInt64(fetch.received.count)
        else { throw .unexpectedStateChunk }
        if fetch.chunkDigests == nil {
            guard chunk.offset == 0, chunk.totalBytes <= UInt64(limits.stateBytesMax),
                  CheckpointState.stateDigest(fetch.sequence, totalBytes: Int(chunk.totalBytes), chunkDigests: chunk.chunkDigests) == fetch.stateDigest
            else { return rejectChunk(into: &actions) }
            fetch.chunkDigests = chunk.chunkDigests
            fetch.totalBytes = chunk.totalBytes
        }
        guard let digests = fetch.chunkDigests, let total = fetch.totalBytes else { return }
        let index = fetch.received.count / max(1, limits.stateChunkBytes)
        let length = min(UInt64(limits.stateChunkBytes), total - chunk.offset)
        guard index < digests.count, UInt64(chunk.bytes.count) == length, Digest.of(chunk.bytes) == digests[index] else {
            stateTransfer.fetch = fetch
            return rejectChunk(into: &actions)
        }
        fetch.received += chunk.bytes
        fetch.deadline = now + settings.requestTimeoutTicks
        stateTransfer.fetch = fetch
        guard UInt64(fetch.received.count) == total else { return requestChunk(into: &actions) }
        guard let state = CheckpointState.decode(fetch.received, replica: id, view: view, limits: limits) else {
            stateTransfer.fetch?.received = []
            return rejectChunk(into: &actions)
        }
        install(state, fetch: fetch, into: &actions)
    }

    mutating func rejectChunk(into actions: inout [HybsterAction]) {
        guard let fetch = stateTransfer.fetch else { return }
        actions.append(.observe(.stateTransferRejected(fetch.sequence, from: fetch.peer)))
        stateTransfer.fetch?.peerIndex += 1
        stateTransfer.fetch?.deadline = now + settings.requestTimeoutTicks
        requestChunk(into: &actions)
    }

    mutating func install(_ state: CheckpointState, fetch: HybsterStateTransfer.Fetch, into actions: inout [HybsterAction]) {
        precondition(executing.isEmpty && fetch.sequence > lastScheduled, "state installed over pending execution")
        clientTable = state.clientTable
        actions.append(.installState(fetch.sequence, applicationSnapshot: state.applicationSnapshot))
        lastScheduled = fetch.sequence
        lastExecuted = fetch.sequence
        lastProposed = max(lastProposed, fetch.sequence)
        stateTransfer.fetch = nil
        checkpoints.own[fetch.sequence] = (fetch.stateDigest, fetch.received, fetch.chunkDigests ?? [])
        // Durable mode: the state is here now; save it and start a new segment (`persistStableCheckpoint`).
        stableCheckpointUnpersisted = true
        if fetch.sequence > lowWatermark { makeStable(fetch.sequence, digest: fetch.stateDigest, proof: fetch.proof, into: &actions) }
        noteExecuted(Array(waiting.values.filter { $0.timestamp <= clientTable.lastExecuted($0.client) }))
        actions.append(.observe(.stateTransferFinished(fetch.sequence)))
        scheduleExecution(into: &actions)
        startStateTransferIfBehind(into: &actions)
    }

    /// Each tick: a fetch whose peer went silent moves to the next peer.
    mutating func stateTransferTick(into actions: inout [HybsterAction]) {
        guard let fetch = stateTransfer.fetch, now >= fetch.deadline else { return }
        stateTransfer.fetch?.peerIndex += 1
        stateTransfer.fetch?.deadline = now + settings.requestTimeoutTicks
        requestChunk(into: &actions)
    }
}
