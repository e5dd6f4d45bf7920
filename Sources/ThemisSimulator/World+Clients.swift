import NIOCore
import ThemisApps
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// Clients: closed-loop key-value operations on a few shared keys, through the real client core.
extension World {
    func tickClient(_ index: Int) {
        if let output = clients[index].core.tick() { performClient(output, at: index) }
        guard clients[index].current == nil, clients[index].remaining > 0 else { return }
        let id = ClientID(UInt32(index))
        let key = "k\(random.next() % 5)"
        let operation: KeyValueOperation
        switch random.next() % 10 {
        case 0..<5: operation = .put(key: key, value: Array("c\(index)-\(clients[index].serial)".utf8))
        case 5..<9: operation = .get(key: key)
        default: operation = .delete(key: key)
        }
        clients[index].serial += 1
        clients[index].remaining -= 1
        // The client's "wall clock" is the simulated tick count: deterministic and growing.
        let timestamp = clients[index].core.nextTimestamp(wallClockMicroseconds: now)
        let unsigned = Request(client: id, timestamp: timestamp, operation: operation.encoded())
        guard let keyring = keyrings[.client(id)] else { return }
        let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
        let request = unsigned.withAuthenticator(tag)
        checker.issued.insert(request.digest)
        requestPool.append(request)
        clients[index].current = (request, now)
        performClient(clients[index].core.start(request), at: index)
    }

    func performClient(_ output: ClientCore.Output, at index: Int) {
        switch output {
        case .send(let request, let targets):
            for target in targets {
                enqueue(.request(request), from: .client(ClientID(UInt32(index))), to: .replica(target))
            }
        case .completed(_, let result):
            if let current = clients[index].current {
                checker.completions.append(Checker.Completion(request: current.request.digest, result: result, start: current.start, end: now))
            }
            clients[index].current = nil
            stats.requestsCompleted += 1
        case .deadlineExceeded:
            clients[index].current = nil
        }
    }

    func deliver(_ packet: Packet, toClient index: Int) {
        guard case .replica(let sender) = packet.from, let keyring = keyrings[.client(ClientID(UInt32(index)))] else { return }
        var payload = packet.payload
        guard case .reply(let reply)? = try? WireCodec.decode(&payload, limits: Limits()),
            reply.replica == sender,
            keyring.verifyLinkAuthenticator(WireCodec.authenticatedBytes(of: reply), authenticator: reply.authenticator, from: .replica(sender))
        else { return }
        if let output = clients[index].core.receive(reply) { performClient(output, at: index) }
    }

    var outstandingOperations: Int {
        clients.reduce(0) { $0 + $1.remaining + ($1.current == nil ? 0 : 1) }
    }
}
