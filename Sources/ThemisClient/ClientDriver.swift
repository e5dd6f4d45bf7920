import NIOCore
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// The client's event-loop side: its queue of calls and carrying out `ClientCore` outputs. Connections,
/// the tick and reply verification belong to its `ClientSession`.
extension ThemisClient {
    func enqueue(_ operation: [UInt8], promise: EventLoopPromise<[UInt8]>) {
        guard !state.value.closed else { return promise.fail(ThemisClientError.closed) }
        state.value.queue.append((operation, promise))
        startNextIfIdle()
    }

    func startNextIfIdle() {
        guard !state.value.core.isBusy, !state.value.queue.isEmpty else { return }
        let (operation, promise) = state.value.queue.removeFirst()
        let timestamp = state.value.core.nextTimestamp(wallClockMicroseconds: ThemisClient.wallClockMicroseconds())
        let unsigned = Request(client: id, timestamp: timestamp, operation: operation)
        let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
        state.value.current = promise
        perform(state.value.core.start(unsigned.withAuthenticator(tag)))
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
