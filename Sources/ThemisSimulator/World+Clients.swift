import NIOCore
import ThemisApps
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// Clients: closed-loop key-value operations on a few shared keys, through the real client core.
extension World {
    package func tickClient(_ index: Int) {
        if let output = clients[index].core.tick() { performClient(output, at: index) }
        guard clients[index].current == nil, clients[index].remaining > 0 else { return }
        let id = ClientID(UInt32(index))
        let key = "k\(random.next() % 5)"
        let operation: KeyValueOperation
        var readOnly = false
        switch random.next() % 10 {
        case 0..<5:
            var value = Array("c\(index)-\(clients[index].serial)".utf8)
            // Large messages: values of about 2.5 KB fill batches (the KV workload is otherwise tiny).
            if scenario.largeMessages { value += [UInt8](repeating: UInt8(ascii: "."), count: 2500) }
            operation = .put(key: key, value: value)
        case 5..<9:
            operation = .get(key: key)
            // Half of the gets are read-only (not with large messages: those runs are about full batches).
            readOnly = !scenario.largeMessages && random.chance(1, in: 2)
        default: operation = .delete(key: key)
        }
        clients[index].serial += 1
        clients[index].remaining -= 1
        // The client's "wall clock" is the simulated tick count: deterministic and growing.
        let timestamp = clients[index].core.nextTimestamp(wallClockMicroseconds: now)
        let unsigned = Request(client: id, timestamp: timestamp, operation: operation.encoded())
        guard let keyring = keyrings[.client(id)] else { return }
        if readOnly {
            let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(ofReadOnly: unsigned), audience: .allReplicas)
            let request = unsigned.withAuthenticator(tag)
            clients[index].current = (request, now, true)
            return performClient(clients[index].core.startReadOnly(request), at: index)
        }
        let request = issue(unsigned, keyring: keyring)
        clients[index].current = (request, now, false)
        performClient(clients[index].core.start(request), at: index)
    }

    /// `unsigned` authenticated as an ordered request, recorded as issued (validity).
    private func issue(_ unsigned: Request, keyring: Keyring) -> Request {
        let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
        let request = unsigned.withAuthenticator(tag)
        checker.issued.insert(request.digest)
        requestPool.append(request)
        return request
    }

    package func performClient(_ output: ClientCore.Output, at index: Int) {
        switch output {
        case .send(let request, let targets):
            for target in targets {
                enqueue(.request(request), from: .client(ClientID(UInt32(index))), to: .replica(target))
            }
        case .sendReadOnly(let request, let targets):
            for target in targets {
                enqueue(.readOnlyRequest(request), from: .client(ClientID(UInt32(index))), to: .replica(target))
            }
        case .fallBack(let operation, let deadlineTick):
            // Ordered instead: a new request with a new timestamp; the operation keeps its start time.
            let id = ClientID(UInt32(index))
            guard let current = clients[index].current, let keyring = keyrings[.client(id)] else { return }
            stats.readOnlyFallbacks += 1
            let timestamp = clients[index].core.nextTimestamp(wallClockMicroseconds: now)
            let request = issue(Request(client: id, timestamp: timestamp, operation: operation), keyring: keyring)
            clients[index].current = (request, current.start, false)
            performClient(clients[index].core.start(request, deadlineTick: deadlineTick), at: index)
        case .completed(_, let result):
            if let current = clients[index].current {
                checker.completions.append(Checker.Completion(
                    request: current.request.digest, result: result, start: current.start, end: now,
                    readOnlyOperation: current.readOnly ? current.request.operation : nil))
                if current.readOnly { stats.readOnlyCompleted += 1 }
            }
            clients[index].current = nil
            stats.requestsCompleted += 1
        case .deadlineExceeded:
            clients[index].current = nil
        }
    }

    package func deliver(_ packet: Packet, toClient index: Int) {
        guard index < clients.count else { return }  // the Byzantine client ignores its replies
        guard case .replica(let sender) = packet.from, let keyring = keyrings[.client(ClientID(UInt32(index)))] else { return }
        var payload = packet.payload
        guard case .reply(let reply)? = try? WireCodec.decode(&payload, limits: Limits()),
            reply.replica == sender,
            keyring.verifyLinkAuthenticator(WireCodec.authenticatedBytes(of: reply), authenticator: reply.authenticator, from: .replica(sender))
        else { return }
        if let output = clients[index].core.receive(reply) { performClient(output, at: index) }
    }

    /// The Byzantine client (id = the number of correct clients): now and then a request that reuses its
    /// last timestamp with another operation, a replay of an old request, a fresh request, a frame of
    /// garbage, or a request whose authenticator is corrupted; to random replicas. It never waits for
    /// replies. Its authentic requests count as issued (validity); the checkers must still hold.
    package func tickByzantineClient() {
        guard random.chance(1, in: 25) else { return }
        let id = ClientID(UInt32(scenario.clientCount))
        guard let keyring = keyrings[.client(id)] else { return }
        let target = Principal.replica(ReplicaID(UInt32(random.next() % UInt64(replicas.count))))
        func signed(_ timestamp: Timestamp, _ operation: KeyValueOperation) -> Request {
            let unsigned = Request(client: id, timestamp: timestamp, operation: operation.encoded())
            return unsigned.withAuthenticator(keyring.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas))
        }
        let key = "k\(random.next() % 5)"
        let last = byzantineClientRequests.last
        switch random.next() % 6 {
        case 5:
            // Read-only requests: a get (answered, never executed), or a put sent as a read, which no replica may
            // execute (it is not issued: the validity checker fails if it runs) and a correct one never answers.
            let operation: KeyValueOperation = random.chance(1, in: 2) ? .get(key: key) : .put(key: key, value: Array("byz-ro".utf8))
            let unsigned = Request(client: id, timestamp: Timestamp(now + 3), operation: operation.encoded())
            let request = unsigned.withAuthenticator(keyring.authenticator(for: WireCodec.authenticatedBytes(ofReadOnly: unsigned), audience: .allReplicas))
            for replica in replicas.indices {
                enqueue(.readOnlyRequest(request), from: .client(id), to: .replica(ReplicaID(UInt32(replica))))
            }
        case 0, 1:
            // Fresh, or (half of the time) the last timestamp again with another operation.
            let timestamp = random.chance(1, in: 2) ? (last?.timestamp ?? Timestamp(now + 1)) : Timestamp(now + 1)
            let request = signed(timestamp, .put(key: key, value: Array("byz-\(now)".utf8)))
            checker.issued.insert(request.digest)
            byzantineClientRequests.append(request)
            for replica in replicas.indices where random.chance(1, in: 2) || replica == 0 {
                enqueue(.request(request), from: .client(id), to: .replica(ReplicaID(UInt32(replica))))
            }
        case 2:
            // A replay of an old request (stale by now, or not yet executed).
            if let old = byzantineClientRequests.randomElement(using: &random) {
                enqueue(.request(old), from: .client(id), to: target)
            }
        case 3:
            // A malformed frame.
            var garbage = ByteBufferAllocator().buffer(capacity: 64)
            for _ in 0..<Int(random.pick(1...64)) { garbage.writeInteger(UInt8(truncatingIfNeeded: random.next())) }
            network[now + random.pick(1...scenario.maxDelayTicks), default: []].append(Packet(from: .client(id), to: target, payload: garbage))
        case 4 where scenario.scheme == .hmac && random.chance(1, in: 2):
            // A MAC vector valid for some replicas only. The client did issue the request, so it may execute.
            let request = signed(Timestamp(now + 2), .delete(key: key))
            var tag = request.authenticator
            let entries = tag.count / 32
            checker.issued.insert(request.digest)
            if random.chance(1, in: 2) {
                // Valid for every replica but one, sent to all: the replica that cannot check it must not
                // stall (it prepares once f others have).
                if entries > 0 {
                    let victim = Int(random.next() % UInt64(entries))
                    tag[victim * 32 + Int(random.next() % 32)] ^= 0x01
                }
                for replica in replicas.indices {
                    enqueue(.request(request.withAuthenticator(tag)), from: .client(id), to: .replica(ReplicaID(UInt32(replica))))
                }
            } else {
                // Valid only at the current primary, sent only there: no backup can vouch for the batch, so
                // its slot stalls until a view change drops it (README, Known limits); liveness must hold.
                let view = replicas.indices.filter(isCorrect).map { replicas[$0].core.view }.max() ?? View(0)
                let primary = Int(replicas[0].core.configuration.primary(of: view).rawValue)
                for entry in 0..<entries where entry != primary {
                    tag[entry * 32 + Int(random.next() % 32)] ^= 0x01
                }
                enqueue(.request(request.withAuthenticator(tag)), from: .client(id), to: .replica(ReplicaID(UInt32(primary))))
            }
        default:
            // A corrupted authenticator: must never execute (validity: it does not count as issued). A MAC
            // vector is corrupted in every entry here (the case above corrupts one).
            let request = signed(Timestamp(now + 2), .delete(key: key))
            var tag = request.authenticator
            let entryBytes = scenario.scheme == .hmac ? 32 : max(1, tag.count)
            for entry in stride(from: 0, to: tag.count, by: entryBytes) {
                tag[entry + Int(random.next() % UInt64(min(entryBytes, tag.count - entry)))] ^= 0x01
            }
            enqueue(.request(request.withAuthenticator(tag)), from: .client(id), to: target)
        }
    }

    package var outstandingOperations: Int {
        clients.reduce(0) { $0 + $1.remaining + ($1.current == nil ? 0 : 1) }
    }
}
