import ThemisCore
import ThemisCrypto
import ThemisHybster
import ThemisSimulator
import ThemisWire

/// How Byzantine replicas tamper with what their (real) Hybster core sends. They hold their own trusted
/// subsystems (opened from the world's counter stores): whatever they certify, the subsystem allows only
/// what a counter allows. With `Scenario.faultyCounter` the stores forget, and equivocation gets through.
extension World where Plugin == Hybster {
    func sendByzantine(_ message: HybsterMessage, from index: Int, to targets: [ReplicaID]) {
        guard let behavior = replicas[index].behavior, let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        let me = Principal.replica(ReplicaID(UInt32(index)))
        func emit(_ message: HybsterMessage, to target: ReplicaID, tag: [UInt8]? = nil) {
            let authenticator = tag ?? keyring.authenticator(for: Hybster.authenticatedBytes(of: message), audience: .allReplicas)
            enqueue(HybsterCodec.wireMessage(message, authenticator: authenticator), from: me, to: .replica(target))
        }
        replicas[index].sent.append(message)
        if replicas[index].sent.count > 64 { replicas[index].sent.removeFirst() }
        switch behavior {
        case .silent:
            return
        case .equivocating, .colluding, .impersonating:
            let variant = equivocated(message, from: index)
            for target in targets { emit(target.rawValue % 2 == 1 ? (variant ?? message) : message, to: target) }
        case .wrongDigests:
            let forged = withDigest(message, Digest(word0: random.next(), word1: random.next(), word2: random.next(), word3: random.next()))
            for target in targets { emit(forged, to: target) }
        case .badAuthenticators:
            var tag = keyring.authenticator(for: Hybster.authenticatedBytes(of: message), audience: .allReplicas)
            if tag.isEmpty { tag = [1] }
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
            for target in targets { emit(withFakeEntry(message) ?? message, to: target) }
        case .flooding:
            for target in targets { for _ in 0..<5 { emit(message, to: target) } }
        case .exhausting:
            for target in targets { emit(message, to: target) }
        }
    }

    /// A PREPARE (or COMMIT) for the same (view, order) with another batch (digest), certified by the
    /// replica's own subsystem: refused by a correct counter, which has used the value already.
    func equivocated(_ message: HybsterMessage, from index: Int) -> HybsterMessage? {
        let replica = ReplicaID(UInt32(index))
        switch message {
        case .prepare(let prepare):
            let header = prepare.header
            guard let other = requestPool.last(where: { candidate in !prepare.requests.contains { $0.digest == candidate.digest } }) else { return nil }
            let requests = prepare.requests.count >= 2 ? Array(prepare.requests.reversed()) : [other]
            let digest = Request.batchDigest(requests)
            stats.equivocationsTried += 1
            guard let certificate = certify(HybsterDigests.prepare(view: header.view, order: header.order, digest: digest, sender: replica),
                                            by: index, pillar: header.certificate.subsystem.pillar, at: header.certificate.value)
            else {
                stats.equivocationsRefused += 1
                return nil
            }
            let variant = PrepareHeader(view: header.view, order: header.order, digest: digest, sender: replica, certificate: certificate)
            return .prepare(HybsterPrepare(header: variant, requests: requests))
        case .commit(let commit):
            guard let other = requestPool.last else { return nil }
            let digest = Request.batchDigest([other])
            stats.equivocationsTried += 1
            guard let certificate = certify(HybsterDigests.commit(view: commit.view, order: commit.order, digest: digest, sender: replica),
                                            by: index, pillar: commit.certificate.subsystem.pillar, at: commit.certificate.value)
            else {
                stats.equivocationsRefused += 1
                return nil
            }
            return .commit(HybsterCommit(view: commit.view, order: commit.order, digest: digest, sender: replica, certificate: certificate))
        default:
            return nil
        }
    }

    /// The replica's own subsystem for `pillar`, opened afresh from its store, asked for a value again.
    func certify(_ digest: Digest, by index: Int, pillar: UInt32, at value: CounterValue) -> TrustedCertificate? {
        guard let open = environment(of: index).trustedSubsystem, var subsystem = try? open(pillar) else { return nil }
        return try? subsystem.certifyIndependent(digest, counter: 0, value: value)
    }

    /// The digest changed, the certificate kept (it no longer verifies: the ingress drops the message).
    func withDigest(_ message: HybsterMessage, _ digest: Digest) -> HybsterMessage {
        switch message {
        case .commit(let m): return .commit(HybsterCommit(view: m.view, order: m.order, digest: digest, sender: m.sender, certificate: m.certificate))
        case .checkpoint(let m): return .checkpoint(HybsterCheckpoint(sequence: m.sequence, stateDigest: digest, sender: m.sender, certificate: m.certificate))
        default: return message
        }
    }

    func withSender(_ message: HybsterMessage, _ sender: ReplicaID) -> HybsterMessage? {
        switch message {
        case .commit(let m): return .commit(HybsterCommit(view: m.view, order: m.order, digest: m.digest, sender: sender, certificate: m.certificate))
        case .checkpoint(let m): return .checkpoint(HybsterCheckpoint(sequence: m.sequence, stateDigest: m.stateDigest, sender: sender, certificate: m.certificate))
        case .fetch(let m): return .fetch(HybsterFetch(order: m.order, sender: sender))
        default: return nil
        }
    }

    /// A VIEW-CHANGE listing a PREPARE the old primary never made (its certificate is noise).
    func withFakeEntry(_ message: HybsterMessage) -> HybsterMessage? {
        guard case .viewChange(let change) = message, let request = requestPool.last else { return nil }
        let order = change.checkpoint.next
        let primary = configuration.primary(of: change.fromView)
        let fake = TrustedCertificate(kind: .independent, subsystem: TrustedSubsystemID(replica: primary, pillar: 0), counter: 0,
                                      previous: CounterValue(view: change.fromView.rawValue, order: order.rawValue),
                                      value: CounterValue(view: change.fromView.rawValue, order: order.rawValue), tag: random.bytes(count: 32))
        let entry = PrepareHeader(view: change.fromView, order: order, digest: Request.batchDigest([request]), sender: primary, certificate: fake)
        let entries = [entry] + change.entries.filter { $0.order != order }
        return .viewChange(HybsterViewChange(sender: change.sender, fromView: change.fromView, toView: change.toView, checkpoint: change.checkpoint,
                                             checkpointDigest: change.checkpointDigest, checkpointProof: change.checkpointProof,
                                             entries: entries, chains: change.chains))
    }

    /// The exhausting replica's flood, one kind per round to one other replica: trusted-MAC'd CHECKPOINTs
    /// across and beyond the window, FETCH and FETCH-STATE at the reply budget, a STATE-CHUNK at its
    /// limits, and real requests relayed again and again. All validly authenticated by their sender.
    func exhaust(from index: Int) {
        guard let keyring = keyrings[.replica(ReplicaID(UInt32(index)))], let open = environment(of: index).trustedSubsystem,
              let subsystem = try? open(0) else { return }
        let me = ReplicaID(UInt32(index))
        let core = replicas[index].core
        let limits = core.limits
        let low = core.lowWatermark.rawValue
        let interval = core.settings.checkpointInterval
        func randomDigest() -> Digest { Digest(word0: random.next(), word1: random.next(), word2: random.next(), word3: random.next()) }
        var messages: [HybsterMessage] = []
        let targets = others(than: index)
        let target = targets[Int(random.next() % UInt64(targets.count))]
        adversary.floodRound += 1
        switch adversary.floodRound % 4 {
        case 0:
            var sequence = (low / interval + 1) * interval
            while sequence <= low + core.settings.watermarkWindow + 4 * interval {
                let digest = randomDigest()
                let certified = HybsterDigests.checkpoint(sequence: SequenceNumber(sequence), stateDigest: digest, sender: me)
                messages.append(.checkpoint(HybsterCheckpoint(sequence: SequenceNumber(sequence), stateDigest: digest, sender: me,
                                                              certificate: subsystem.trustedMAC(certified))))
                sequence += interval
            }
        case 1:
            for offset in 0..<UInt64(2 * limits.fetchRepliesBurst) {
                messages.append(.fetch(HybsterFetch(order: SequenceNumber(low + 1 + offset), sender: me)))
                messages.append(.fetchState(HybsterFetchState(sequence: core.lowWatermark, stateDigest: randomDigest(), offset: 0, sender: me)))
            }
        case 2:
            messages.append(.stateChunk(HybsterStateChunk(
                sequence: SequenceNumber((low / interval + 1) * interval), stateDigest: randomDigest(), totalBytes: UInt64(limits.stateBytesMax),
                offset: 0, bytes: [UInt8](repeating: 0xEE, count: limits.stateChunkBytes),
                chunkDigests: (0..<limits.stateChunksMax).map { _ in randomDigest() }, sender: me)))
        default:
            for request in requestPool.suffix(clients.count) { messages.append(.request(request, relayedBy: me)) }
        }
        for message in messages {
            let tag = keyring.authenticator(for: Hybster.authenticatedBytes(of: message), audience: .allReplicas)
            enqueue(HybsterCodec.wireMessage(message, authenticator: tag), from: .replica(me), to: .replica(target))
        }
    }
}
