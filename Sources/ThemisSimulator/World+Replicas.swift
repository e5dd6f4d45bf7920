import NIOCore
import ThemisApps
import ThemisCore
import ThemisCrypto
import ThemisPBFT
import ThemisWire

/// Replicas: delivery through the real codec and authenticators, carrying out the core's actions.
extension World {
    func deliver(_ packet: Packet, toReplica index: Int) {
        guard replicas[index].crashedUntil == nil else { return }
        let me = Principal.replica(ReplicaID(UInt32(index)))
        guard let keyring = keyrings[me] else { return }
        var payload = packet.payload
        let message: WireMessage
        do {
            message = try WireCodec.decode(&payload, limits: replicas[index].core.limits)
        } catch {
            stats.rejections += 1
            if debugLog, isCorrect(index) { print("t\(now) r\(index) cannot decode a frame from \(packet.from): \(error)") }
            return
        }
        var actions: [Action<PBFTMessage>] = []
        // The real ingress (the shell's): the network knows the true sender, as a link after the handshake does.
        let ingress = Ingress(keyring: keyring, skippingAuthenticationForTesting: scenario.ingressSkipsAuthentication)
        do {
            switch (packet.from, message) {
            case (.replica(let sender), .pbft(let inner, let tag)):
                switch ingress.admit(inner, authenticator: tag, from: sender) {
                case .success(let verified):
                    if verified.requestsUnverified, isCorrect(index) {
                        stats.unverifiedBatches += 1
                        if debugLog { print("t\(now) r\(index) cannot authenticate a request in \(inner.kindName) from \(inner.sender)") }
                    }
                    try replicas[index].core.receive(verified, into: &actions)
                case .failure(let refusal):
                    refused(refusal)
                    if debugLog, isCorrect(index), inner.kindName.hasSuffix("view") || inner.kindName == "view-change" {
                        print("t\(now) r\(index) refuses \(inner.kindName) from \(inner.sender): \(refusal)")
                    }
                    return
                }
            case (.client(let client), .request(let request)):
                switch ingress.admit(request, from: client) {
                case .success(let verified): try replicas[index].core.submit(verified, into: &actions)
                case .failure(let refusal):
                    refused(refusal)
                    return
                }
            default:
                stats.rejections += 1
                return
            }
        } catch {
            stats.rejections += 1
            if debugLog, isCorrect(index), case .pbft(let inner, _) = message, inner.kindName.hasSuffix("view") || inner.kindName == "view-change" {
                print("t\(now) r\(index) rejects \(inner.kindName) from \(inner.sender): \(error)")
            }
        }
        replicas[index].core.flush(into: &actions)
        perform(actions, at: index)
    }

    func refused(_ refusal: IngressRefusal) {
        stats.rejections += 1
        stats.ingressRefusals[refusal, default: 0] += 1
    }

    func tickReplica(_ index: Int) {
        guard replicas[index].crashedUntil == nil else { return }
        if replicas[index].behavior == .exhausting, !healed, now % 32 == UInt64(index) % 32 { exhaust(from: index) }
        if isCorrect(index), now % 16 == UInt64(index) % 16 { checkRetainedBytes(index) }
        if !healed && random.chance(scenario.tickSkewPerMille, in: 1000) { return }
        var actions: [Action<PBFTMessage>] = []
        replicas[index].core.tick(into: &actions)
        replicas[index].core.flush(into: &actions)
        perform(actions, at: index)
    }

    func perform(_ actions: [Action<PBFTMessage>], at index: Int) {
        for action in actions {
            switch action {
            case .send(let message, let target):
                send(message, from: index, to: [target], broadcast: false)
            case .broadcast(let message):
                send(message, from: index, to: others(than: index), broadcast: true)
            case .reply(let reply):
                sendReply(reply, from: index)
            case .execute(let batch):
                execute(batch, at: index)
            case .installState(let sequence, let snapshot):
                do {
                    try replicas[index].app.restoreNow(from: snapshot)
                } catch {
                    if isCorrect(index) { checker.fail("state transfer", now, "replica \(index) could not restore checkpoint \(sequence)") }
                }
                checker.executedBy[index] = []
            case .observe(let event):
                observe(event, at: index)
            }
        }
    }

    func execute(_ batch: ExecutionBatch, at index: Int) {
        if isCorrect(index) { checker.executed(batch, by: index, at: now) }
        trace.add(UInt64(index) << 56 | batch.sequence.rawValue)
        var results: [[UInt8]] = []
        for request in batch.requests {
            results.append(replicas[index].app.executeNow(request.operation).encoded())
            trace.add(request.digest)
        }
        let snapshot = batch.checkpoint ? replicas[index].app.snapshotBytes() : nil
        var actions: [Action<PBFTMessage>] = []
        replicas[index].core.executed(batch.sequence, results: results, applicationSnapshot: snapshot, into: &actions)
        perform(actions, at: index)
    }

    func sendReply(_ reply: Reply, from index: Int) {
        guard let keyring = keyrings[.replica(ReplicaID(UInt32(index)))] else { return }
        var reply = reply
        if let behavior = replicas[index].behavior {
            if behavior == .silent { return }
            // Byzantine replicas lie about results half of the time.
            if random.chance(1, in: 2) {
                reply = Reply(view: reply.view, timestamp: reply.timestamp, client: reply.client, replica: reply.replica, result: [0xBA, 0xD0])
            }
        }
        let tag = keyring.linkAuthenticator(for: WireCodec.authenticatedBytes(of: reply), peer: .client(reply.client))
        enqueue(.reply(reply.withAuthenticator(tag)), from: .replica(ReplicaID(UInt32(index))), to: .client(reply.client))
    }

    func observe(_ event: Event, at index: Int) {
        if debugLog, isCorrect(index) {
            switch event {
            case .viewChangeStarted, .newViewSent, .viewChanged: print("t\(now) r\(index) \(event)")
            default: break
            }
        }
        switch event {
        case .checkpointTaken(let sequence, let digest):
            if isCorrect(index) { checker.checkpoint(sequence, digest, by: index, at: now) }
        case .viewChanged:
            stats.viewChanges += 1
        case .stateTransferFinished:
            stats.stateTransfers += 1
        default:
            break
        }
    }
}

/// The memory checker: what a correct core holds stays within the bound `Limits` give (issue 9).
extension World {
    func checkRetainedBytes(_ index: Int) {
        let core = replicas[index].core
        let retained = core.retainedBytes
        stats.retainedBytesMax = max(stats.retainedBytesMax, retained.total)
        let over = zip(retained.parts, retainedBytesBound.parts).filter { $0.0.bytes > $0.1.bytes }
        if !over.isEmpty {
            let detail = over.map { "\($0.0.name) \($0.0.bytes) B > \($0.1.bytes) B" }.joined(separator: ", ")
            checker.fail("memory", now, "replica \(index) holds more than the bound: \(detail)")
        }
    }
}
