import NIOCore
import NIOPosix
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

/// The client's event-loop side: connections, the tick, and carrying out `ClientCore` outputs.
extension ThemisClient {
    func startOnLoop() {
        for replica in cluster.configuration.replicas {
            connect(to: replica, delayMilliseconds: 0)
        }
        state.value.ticker = loop.scheduleRepeatedTask(
            initialDelay: .milliseconds(options.tickMilliseconds), delay: .milliseconds(options.tickMilliseconds)
        ) { _ in self.tick() }
    }

    func connect(to replica: ReplicaID, delayMilliseconds: Int64) {
        guard !state.value.closed, let endpoint = cluster.replicas.first(where: { $0.id == replica.rawValue }) else { return }
        loop.scheduleTask(in: .milliseconds(delayMilliseconds)) {
            guard !self.state.value.closed else { return }
            let keyring = self.keyring
            let tag = self.keyring.clusterTag
            let limits = self.cluster.limits
            ClientBootstrap(group: self.loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addThemisFront(
                            keyring: keyring, clusterTag: tag, limits: limits,
                            admit: { $0 == .replica(replica) }, onRejection: { _ in })
                        try channel.pipeline.syncOperations.addHandler(ClientInboundHandler(client: self, replica: replica))
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        channel.closeFuture.whenComplete { _ in self.disconnected(replica, channel: channel) }
                    case .failure:
                        self.connect(to: replica, delayMilliseconds: 200)
                    }
                }
        }
    }

    func connected(_ replica: ReplicaID, channel: any Channel) {
        loop.preconditionInEventLoop()
        state.value.channels[replica] = channel
        // A replica that comes up late still gets the request that is waiting.
        if let request = state.value.core.outstandingRequest {
            send(request, to: [replica])
        }
    }

    func disconnected(_ replica: ReplicaID, channel: any Channel) {
        guard state.value.channels[replica] === channel || state.value.channels[replica] == nil else { return }
        state.value.channels[replica] = nil
        connect(to: replica, delayMilliseconds: 200)
    }

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
            send(request, to: replicas)
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

    func send(_ request: Request, to replicas: [ReplicaID]) {
        let frame = ByteBufferAllocator().frame(.request(request))
        // If the link to a target is down (a crashed primary), tell every replica right away instead of
        // waiting for the retransmission timeout: the backups relay it and start their request timers.
        let reachable = replicas.allSatisfy { state.value.channels[$0] != nil }
        let targets = reachable ? replicas : cluster.configuration.replicas
        for replica in targets {
            state.value.channels[replica]?.writeAndFlush(frame, promise: nil)
        }
    }

    func queryStatus(_ replica: ReplicaID, promise: EventLoopPromise<StatusReport>, timeoutMilliseconds: Int64) {
        guard let channel = state.value.channels[replica] else {
            return promise.fail(ThemisClientError.notConnected(replica))
        }
        let nonce = state.value.nextStatusNonce
        state.value.nextStatusNonce += 1
        state.value.statusQueries[nonce] = promise
        channel.writeAndFlush(ByteBufferAllocator().frame(.statusQuery(StatusQuery(nonce: nonce))), promise: nil)
        loop.scheduleTask(in: .milliseconds(timeoutMilliseconds)) {
            self.state.value.statusQueries.removeValue(forKey: nonce)?.fail(ThemisClientError.statusTimeout(replica))
        }
    }

    func receivedStatus(_ report: StatusReport) {
        state.value.statusQueries.removeValue(forKey: report.nonce)?.succeed(report)
    }
}

/// Verifies replies from one replica and hands them to the client.
final class ClientInboundHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    let client: ThemisClient
    let replica: ReplicaID

    init(client: ThemisClient, replica: ReplicaID) {
        self.client = client
        self.replica = replica
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HandshakeCompleted {
            client.connected(replica, channel: context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch message.message {
        case .reply(let reply):
            // The reply must come from the replica at the other end of this link and carry its MAC; replies
            // the client no longer waits for are dropped before the MAC is checked.
            guard reply.replica == replica, reply.client == client.id, client.state.value.core.awaits(reply),
                client.keyring.verifyLinkAuthenticator(WireCodec.authenticatedBytes(of: reply), authenticator: reply.authenticator, from: .replica(replica))
            else { return }
            client.received(reply)
        case .statusReport(let report):
            guard report.replica == replica else { return }
            client.receivedStatus(report)
        case .hello, .helloProof, .goodbye, .pbft, .request, .statusQuery:
            context.close(promise: nil)  // a replica never sends these after the handshake
        }
    }
}
