import ThemisCore
import ThemisCrypto
import ThemisWire

/// How Byzantine replicas tamper with what their (real) core sends.
extension World {
    func sendByzantine(_ message: PBFTMessage, from index: Int, to targets: [ReplicaID], broadcast: Bool) {
        guard let behavior = replicas[index].behavior, let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        let me = Principal.replica(ReplicaID(UInt32(index)))
        func authentic(_ message: PBFTMessage) -> [UInt8] {
            keyring.authenticator(for: WireCodec.authenticatedBytes(of: message), audience: .allReplicas)
        }
        func emit(_ message: PBFTMessage, to target: ReplicaID, tag: [UInt8]? = nil) {
            enqueue(.pbft(message, authenticator: tag ?? authentic(message)), from: me, to: .replica(target))
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
            if collusion[prePrepare.sequence] == nil, let other = variant(of: prePrepare) {
                collusion[prePrepare.sequence] = (prePrepare, other)
            }
            guard toVariant, let pair = collusion[prePrepare.sequence], pair.0.view == prePrepare.view else { return nil }
            return .prePrepare(pair.1)
        case .prepare(let prepare) where colluding:
            guard let pair = collusion[prepare.sequence] else { return nil }
            let digest = toVariant ? pair.1.digest : pair.0.digest
            return .prepare(Prepare(view: prepare.view, sequence: prepare.sequence, digest: digest, sender: prepare.sender))
        case .commit(let commit) where colluding:
            guard let pair = collusion[commit.sequence] else { return nil }
            let digest = toVariant ? pair.1.digest : pair.0.digest
            return .commit(Commit(view: commit.view, sequence: commit.sequence, digest: digest, sender: commit.sender))
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
