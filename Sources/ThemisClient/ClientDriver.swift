import NIOCore
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// The client's event-loop side: its queue of calls and carrying out `ClientCore` outputs. Connections,
/// the tick and reply verification belong to its `ClientSession`.
extension ThemisClient {
    func enqueue(_ operation: [UInt8], readOnly: Bool = false, promise: EventLoopPromise<[UInt8]>) {
        guard !state.value.closed else { return promise.fail(ThemisClientError.closed) }
        state.value.queue.append((operation, readOnly, promise))
        startNextIfIdle()
    }

    func startNextIfIdle() {
        guard !state.value.core.isBusy, !state.value.queue.isEmpty else { return }
        let (operation, readOnly, promise) = state.value.queue.removeFirst()
        state.value.current = promise
        let unsigned = Request(client: id, timestamp: nextTimestamp(), operation: operation)
        // Hybster replicas do not answer reads yet (`HybsterReplica.servesReadOnlyRequests`): order them at once.
        if readOnly && cluster.faultModel != .hybrid {
            let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(ofReadOnly: unsigned), audience: .allReplicas)
            perform(state.value.core.startReadOnly(unsigned.withAuthenticator(tag)))
        } else {
            perform(state.value.core.start(authenticated(unsigned)))
        }
    }

    private func nextTimestamp() -> Timestamp {
        state.value.core.nextTimestamp(wallClockMicroseconds: ThemisClient.wallClockMicroseconds())
    }

    private func authenticated(_ request: Request) -> Request {
        request.withAuthenticator(keyring.authenticator(for: WireCodec.authenticatedBytes(of: request), audience: .allReplicas))
    }

    func tick() {
        if let output = state.value.core.tick() { perform(output) }
    }

    func received(_ reply: Reply) {
        if let output = state.value.core.receive(reply) { perform(output) }
    }

    func perform(_ output: ClientCore.Output) {
        switch output {
        case .send(let request, let replicas):
            // If the link to a target is down (a crashed primary), tell every replica right away instead of
            // waiting for the retransmission timeout: the backups relay it and start their request timers.
            let targets = session.isConnected(to: replicas) ? replicas : cluster.configuration.replicas
            session.send(request, to: targets)
        case .sendReadOnly(let request, let replicas):
            session.send(request, to: replicas, readOnly: true)
        case .fallBack(let operation, let deadlineTick):
            // A new request (a new timestamp: late read-only replies must not count for it).
            let request = authenticated(Request(client: id, timestamp: nextTimestamp(), operation: operation))
            perform(state.value.core.start(request, deadlineTick: deadlineTick))
        case .completed(_, let result):
            // Cleared before completing: a callback may start the next call right away (re-entrantly).
            let promise = state.value.current
            state.value.current = nil
            promise?.succeed(result)
            startNextIfIdle()
        case .deadlineExceeded:
            let promise = state.value.current
            state.value.current = nil
            promise?.fail(ThemisClientError.deadlineExceeded(seconds: Double(options.deadlineMilliseconds) / 1000))
            startNextIfIdle()
        }
    }
}
