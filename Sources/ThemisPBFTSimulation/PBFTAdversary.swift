import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisPBFT
import ThemisSimulator
import ThemisWire

/// How Byzantine replicas tamper with what their (real) core sends.
extension World where Plugin == PBFT {
    func sendByzantine(_ message: PBFTMessage, from index: Int, to targets: [ReplicaID], broadcast: Bool) {
        guard let behavior = replicas[index].behavior, let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        let me = Principal.replica(ReplicaID(UInt32(index)))
        func authentic(_ message: PBFTMessage) -> [UInt8] {
            keyring.authenticator(for: WireCodec.authenticatedBytes(of: message), audience: .allReplicas)
        }
        func emit(_ message: PBFTMessage, to target: ReplicaID, tag: [UInt8]? = nil) {
            enqueue(PBFTCodec.wireMessage(message, authenticator: tag ?? authentic(message)), from: me, to: .replica(target))
        }
        replicas[index].sent.append(message)
        if replicas[index].sent.count > 64 { replicas[index].sent.removeFirst() }
        switch behavior {
        case .silent:
            return
        case .equivocating, .colluding:
            for target in targets {
                emit(equivocated(message, for: target, colluding: behavior == .colluding) ?? message, to: target)
            }
        case .wrongDigests:
            let forged = withDigest(message, Digest(word0: random.next(), word1: random.next(), word2: random.next(), word3: random.next()))
            for target in targets { emit(forged, to: target) }
        case .badAuthenticators:
            var tag = authentic(message)
            if tag.isEmpty { tag = [1] }
            // Every 32-byte entry of a MAC vector (and any signature) is corrupted.
            for position in stride(from: 0, to: tag.count, by: 32) { tag[position] ^= 0x55 }
            for target in targets { emit(message, to: target, tag: tag) }
        case .replaying:
            for target in targets { emit(message, to: target) }
            if let old = replicas[index].sent.randomElement(using: &random), let target = targets.randomElement(using: &random) {
                emit(old, to: target)
            }
        case .forgingSender:
            let victim = ReplicaID(UInt32((index + 1) % replicas.count))
            for target in targets { emit(withSender(message, victim) ?? message, to: target) }
        case .fakeCertificates:
            for target in targets { emit(withFakeCertificate(message) ?? message, to: target) }
        case .flooding:
            for target in targets { for _ in 0..<5 { emit(message, to: target) } }
        case .impersonating:
            for target in targets {
                emit(equivocated(message, for: target, colluding: false) ?? message, to: target)
            }
            impersonate(after: message, from: index, to: targets)
        case .exhausting:
            // Its own messages go out as a correct replica's; the flood comes on its ticks (`exhaust`).
            for target in targets { emit(message, to: target) }
        }
    }

    /// After its PRE-PREPARE, the impersonating primary's votes for each target's version in the names of
    /// all other replicas, sent on their links (the network takes them as theirs), tagged with its own key.
    func impersonate(after message: PBFTMessage, from index: Int, to targets: [ReplicaID]) {
        guard case .prePrepare(let prePrepare) = message, let pair = adversary.collusion[prePrepare.sequence], pair.0.view == prePrepare.view,
              let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        let me = ReplicaID(UInt32(index))
        for target in targets {
            let digest = target.rawValue % 2 == 1 ? pair.1.digest : pair.0.digest
            for name in configuration.replicas where name != target {
                var votes: [PBFTMessage] = [.commit(Commit(view: prePrepare.view, sequence: prePrepare.sequence, digest: digest, sender: name))]
                if name != me {
                    votes.append(.prepare(Prepare(view: prePrepare.view, sequence: prePrepare.sequence, digest: digest, sender: name)))
                }
                for vote in votes {
                    let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: vote), audience: .allReplicas)
                    enqueue(PBFTCodec.wireMessage(vote, authenticator: tag), from: .replica(name), to: .replica(target))
                }
            }
        }
    }

    /// A different, validly authenticated-looking batch for the same (view, sequence number).
    func variant(of prePrepare: PrePrepare) -> PrePrepare? {
        var requests = prePrepare.requests
        if requests.count >= 2 {
            requests.reverse()
        } else if let other = requestPool.last(where: { candidate in !requests.contains { $0.digest == candidate.digest } }) {
            requests = [other]
        } else {
            return nil
        }
        return PrePrepare(view: prePrepare.view, sequence: prePrepare.sequence, requests: requests, sender: prePrepare.sender)
    }

    /// Odd-numbered targets get the variant. Colluders vote for whichever version each target got.
    func equivocated(_ message: PBFTMessage, for target: ReplicaID, colluding: Bool) -> PBFTMessage? {
        let toVariant = target.rawValue % 2 == 1
        switch message {
        case .prePrepare(let prePrepare):
            if adversary.collusion[prePrepare.sequence] == nil, let other = variant(of: prePrepare) {
                adversary.collusion[prePrepare.sequence] = (prePrepare, other)
            }
            guard toVariant, let pair = adversary.collusion[prePrepare.sequence], pair.0.view == prePrepare.view else { return nil }
            return .prePrepare(pair.1)
        case .prepare(let prepare) where colluding:
            guard let pair = adversary.collusion[prepare.sequence] else { return nil }
            let digest = toVariant ? pair.1.digest : pair.0.digest
            return .prepare(Prepare(view: prepare.view, sequence: prepare.sequence, digest: digest, sender: prepare.sender))
        case .commit(let commit) where colluding:
            guard let pair = adversary.collusion[commit.sequence] else { return nil }
            let digest = toVariant ? pair.1.digest : pair.0.digest
            return .commit(Commit(view: commit.view, sequence: commit.sequence, digest: digest, sender: commit.sender))
        case .recoveryReply(let reply):
            // To a recovering replica: "nothing happened here", the answer that pulls its estimate down the most.
            return .recoveryReply(RecoveryReply(nonce: reply.nonce, view: View(0), lastExecuted: .zero, stableCheckpoint: .zero,
                                                stableDigest: .zero, checkpointProof: [], sender: reply.sender))
        default:
            return nil
        }
    }

    func withDigest(_ message: PBFTMessage, _ digest: Digest) -> PBFTMessage {
        switch message {
        case .prepare(let m): return .prepare(Prepare(view: m.view, sequence: m.sequence, digest: digest, sender: m.sender))
        case .commit(let m): return .commit(Commit(view: m.view, sequence: m.sequence, digest: digest, sender: m.sender))
        case .checkpoint(let m): return .checkpoint(Checkpoint(sequence: m.sequence, stateDigest: digest, sender: m.sender))
        default: return message
        }
    }

    func withSender(_ message: PBFTMessage, _ sender: ReplicaID) -> PBFTMessage? {
        switch message {
        case .prepare(let m): return .prepare(Prepare(view: m.view, sequence: m.sequence, digest: m.digest, sender: sender))
        case .commit(let m): return .commit(Commit(view: m.view, sequence: m.sequence, digest: m.digest, sender: sender))
        case .checkpoint(let m): return .checkpoint(Checkpoint(sequence: m.sequence, stateDigest: m.stateDigest, sender: sender))
        default: return nil
        }
    }

    /// A VIEW-CHANGE claiming a prepared certificate for a batch that never prepared.
    func withFakeCertificate(_ message: PBFTMessage) -> PBFTMessage? {
        guard case .viewChange(let change) = message, let request = requestPool.last else { return nil }
        let sequence = change.stableCheckpoint.next
        let oldView = change.newView.rawValue > 0 ? View(change.newView.rawValue - 1) : View(0)
        let primary = configuration.primary(of: oldView)
        let prePrepare = PrePrepare(view: oldView, sequence: sequence, requests: [request], sender: primary)
        let prepares = configuration.replicas.filter { $0 != primary }.prefix(configuration.quorumSize - 1).map {
            Authenticated(Prepare(view: oldView, sequence: sequence, digest: prePrepare.digest, sender: $0), authenticator: [7, 7, 7])
        }
        let fake = PreparedCertificate(prePrepare: Authenticated(prePrepare.header, authenticator: [9, 9]), prepares: Array(prepares))
        let prepared = [fake] + change.prepared.filter { $0.sequence != sequence }
        return .viewChange(ViewChange(newView: change.newView, stableCheckpoint: change.stableCheckpoint, stableDigest: change.stableDigest,
                                      checkpointProof: change.checkpointProof, prepared: prepared, sender: change.sender))
    }
}

/// The exhausting replica's flood (issue 9): every message kind at its limits, validly authenticated by
/// its sender, one kind per round, to one other replica (a round to all would cost the simulation more
/// than it shows: the bound is per receiver).
extension World where Plugin == PBFT {
    func exhaust(from index: Int) {
        guard let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        let me = ReplicaID(UInt32(index))
        let core = replicas[index].core
        let limits = core.limits
        let window = core.settings.watermarkWindow
        let interval = core.settings.checkpointInterval
        let low = core.lowWatermark.rawValue
        // PRE-PREPAREs only where it is the primary (this view or the next: those are kept or buffered);
        // the others are refused on their sender at once.
        let views = [core.view, View(core.view.rawValue + 1)]
        let leading = views.filter { configuration.primary(of: $0) == me }
        let sizes = scenario.scheme.authenticatorSizes(replicaCount: scenario.replicaCount)
        func randomDigest() -> Digest { Digest(word0: random.next(), word1: random.next(), word2: random.next(), word3: random.next()) }
        /// A batch as large as `checkBatch` admits, of requests no client sent (their authenticators are
        /// noise); made once per run (cheap operations: a debug build runs this too).
        func fullBatch() -> [Request] {
            if let batch = adversary.floodBatch { return batch }
            let perRequest = limits.batchBytesMax / limits.batchRequestsMax - sizes.request - 64
            let operationBytes = max(1, min(limits.operationBytesMax, perRequest))
            let batch = (0..<limits.batchRequestsMax).map { index in
                Request(client: ClientID(UInt32(index % max(1, clients.count))), timestamp: Timestamp(random.next() >> 8),
                        operation: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: operationBytes),
                        authenticator: random.bytes(count: sizes.request))
            }
            adversary.floodBatch = batch
            return batch
        }
        var messages: [PBFTMessage] = []
        let targets = others(than: index)
        let target = targets[Int(random.next() % UInt64(targets.count))]
        adversary.floodRound += 1
        switch adversary.floodRound % 6 {
        case 0:
            let batch = fullBatch()
            for view in leading {
                for sequence in (low + 1)...(low + window) {
                    messages.append(.prePrepare(PrePrepare(view: view, sequence: SequenceNumber(sequence), requests: batch, sender: me)))
                }
            }
        case 1:
            for view in views {
                for sequence in (low + 1)...(low + window) {
                    messages.append(.prepare(Prepare(view: view, sequence: SequenceNumber(sequence), digest: randomDigest(), sender: me)))
                    messages.append(.commit(Commit(view: view, sequence: SequenceNumber(sequence), digest: randomDigest(), sender: me)))
                }
            }
        case 2:
            var sequence = (low / interval + 1) * interval
            while sequence <= low + window + 4 * interval {
                messages.append(.checkpoint(Checkpoint(sequence: SequenceNumber(sequence), stateDigest: randomDigest(), sender: me)))
                sequence += interval
            }
        case 3:
            for _ in 0..<(2 * limits.fetchRepliesBurst) {
                messages.append(.fetchState(FetchState(sequence: core.lowWatermark, stateDigest: core.stableCheckpointDigest ?? randomDigest(),
                                                       offset: 0, sender: me)))
                messages.append(.fetchBatches(FetchBatches(from: SequenceNumber(low + 1), sender: me)))
            }
        case 4:
            let chunks = limits.stateChunksMax
            messages.append(.stateChunk(StateChunk(
                sequence: SequenceNumber((low / interval + 1) * interval), stateDigest: randomDigest(), totalBytes: UInt64(limits.stateBytesMax),
                offset: 0, bytes: [UInt8](repeating: 0xEE, count: limits.stateChunkBytes), chunkDigests: (0..<chunks).map { _ in randomDigest() }, sender: me)))
            let batch = fullBatch()
            var batches: [PrePrepare] = []
            for sequence in (low + 1)...(low + window) {
                batches.append(PrePrepare(view: core.view, sequence: SequenceNumber(sequence), requests: batch, sender: me))
                if batches.count == limits.committedBatchesPerMessageMax {
                    messages.append(.committedBatches(CommittedBatches(batches: batches, sender: me)))
                    batches = []
                }
            }
            if !batches.isEmpty { messages.append(.committedBatches(CommittedBatches(batches: batches, sender: me))) }
        default:
            // Real requests (they verify) relayed again and again.
            for request in requestPool.suffix(clients.count) {
                messages.append(.request(request, relayedBy: me))
            }
        }
        for message in messages {
            let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: message), audience: .allReplicas)
            enqueue(PBFTCodec.wireMessage(message, authenticator: tag), from: .replica(me), to: .replica(target))
        }
    }
}
