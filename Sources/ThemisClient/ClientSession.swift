import NIOCore
import NIOPosix
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisTLS
import ThemisTransport
import ThemisWire

/// One connection to every replica, shared by any number of clients (ids) of this process on one event
/// loop. The first client to join does the handshake; every other one is attached to each connection
/// with a proof made with its own keys (`WireMessage.attachClient`). Requests written in one pass of the
/// loop share a flush, and a replica's replies to all of them arrive in one read per batch instead of
/// one per client, so a process with many clients costs the replicas and the kernel far fewer system
/// calls. Each client keeps its own keys, timestamps, retransmissions and reply quorum.
///
/// `ThemisClient(cluster:id:keys:)` makes a session of its own; create a session and pass it to
/// `ThemisClient(id:keys:session:)` to share one. An id may be in a session once at a time. The first
/// client's identity proves the connections for the session's whole life (also after that client
/// closes): do not use that id in another process or session at the same time, or the replicas, which
/// keep one connection per client id, will keep replacing one connection with the other.
public final class ClientSession: Sendable {
    let loop: any EventLoop
    let cluster: ClusterFile
    let tickMilliseconds: Int64
    let state: NIOLoopBoundBox<SessionState>
    /// TLS for every connection when the cluster file has `tls` (its authority checks the replicas).
    let tls: TLSContexts?

    /// - Parameters:
    ///   - eventLoop: the loop on which the session's connections and all its clients run.
    ///   - tickMilliseconds: how often the clients' clocks tick (retransmissions, deadlines).
    /// - Throws: `TLSSetupError` when the cluster file's `tls.certificateAuthority` cannot be used.
    public init(cluster: ClusterFile, eventLoop: any EventLoop, tickMilliseconds: Int64 = 10) throws {
        self.tls = try TLSContexts.make(cluster: cluster, identityPEM: nil)
        self.loop = eventLoop
        self.cluster = cluster
        self.tickMilliseconds = max(1, tickMilliseconds)
        self.state = NIOLoopBoundBox.makeBoxSendingValue(SessionState(), eventLoop: eventLoop)
    }

    /// The event loop of the session's connections and of its clients' callbacks.
    public var eventLoop: any EventLoop { loop }

    /// Closes every connection; the clients still in the session fail their calls with `.closed`.
    public func close() async {
        let done = loop.makePromise(of: Void.self)
        loop.execute {
            let members = Array(self.state.value.members.values)
            for member in members { member.closeOnLoop() }
            self.shutDown()
            done.succeed(())
        }
        try? await done.futureResult.get()
    }

    // MARK: Members (on the loop)

    func join(_ client: ThemisClient) {
        loop.preconditionInEventLoop()
        // A closed session, or a second client with an id already in it (their replies could not be told
        // apart): the newcomer is closed, its calls fail with `.closed`.
        guard !state.value.closed, state.value.members[client.id] == nil else { return client.closeOnLoop() }
        state.value.members[client.id] = client
        if state.value.handshakeKeyring == nil {
            // The first client proves the connections; the others attach to them.
            state.value.handshakeKeyring = client.keyring
            for replica in cluster.configuration.replicas { connect(to: replica, delayMilliseconds: 0) }
            state.value.ticking = true
            SessionTicker.add(self, milliseconds: tickMilliseconds)
            return
        }
        for replica in state.value.links.keys {
            attach(client, replica: replica)
        }
        scheduleFlush()
    }

    func leave(_ client: ThemisClient) {
        loop.preconditionInEventLoop()
        guard state.value.members[client.id] === client else { return }
        state.value.members[client.id] = nil
    }

    /// Stops the ticker and closes the connections (a session that belonged to one client, or `close()`).
    func shutDown() {
        loop.preconditionInEventLoop()
        state.value.closed = true
        if state.value.ticking {
            state.value.ticking = false
            SessionTicker.remove(self, milliseconds: tickMilliseconds)
        }
        for (_, link) in state.value.links { link.channel.close(promise: nil) }
        state.value.links = [:]
        for (_, promise) in state.value.statusQueries { promise.fail(ThemisClientError.closed) }
        state.value.statusQueries = [:]
    }

    func tick() {
        for (_, member) in state.value.members { member.tick() }
    }

    // MARK: Connections

    private func connect(to replica: ReplicaID, delayMilliseconds: Int64) {
        guard !state.value.closed, let keyring = state.value.handshakeKeyring,
            let endpoint = cluster.replicas.first(where: { $0.id == replica.rawValue })
        else { return }
        loop.scheduleTask(in: .milliseconds(delayMilliseconds)) {
            guard !self.state.value.closed else { return }
            let limits = self.cluster.limits
            ClientBootstrap(group: self.loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try self.tls?.addClientHandler(to: channel.pipeline.syncOperations, host: endpoint.host)
                        try channel.pipeline.syncOperations.addThemisFront(
                            keyring: keyring, clusterTag: keyring.clusterTag, limits: limits,
                            admit: { $0 == .replica(replica) }, onRejection: { _ in })
                        try channel.pipeline.syncOperations.addHandler(ClientInboundHandler(session: self, replica: replica))
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

    func connected(_ replica: ReplicaID, channel: any Channel, handshake: HandshakeCompleted) {
        loop.preconditionInEventLoop()
        guard !state.value.closed else { return channel.close(promise: nil) }
        state.value.links[replica] = SessionState.Link(channel: channel, handshake: handshake)
        for (_, member) in state.value.members {
            attach(member, replica: replica)
        }
        // A replica that comes up late still gets the requests that are waiting.
        for (_, member) in state.value.members {
            if let request = member.state.value.core.outstandingRequest {
                send(request, to: [replica], readOnly: member.state.value.core.outstandingIsReadOnly)
            }
        }
        scheduleFlush()
    }

    /// Attaches `client` to the connection to `replica` unless it proved that connection or is attached already.
    private func attach(_ client: ThemisClient, replica: ReplicaID) {
        guard let link = state.value.links[replica], client.keyring.me != link.handshake.ownHello.principal,
            !link.attached.contains(client.id), let attach = client.keyring.attachProof(link.handshake)
        else { return }
        link.channel.write(ByteBufferAllocator().frame(.attachClient(attach)), promise: nil)
        state.value.links[replica]?.attached.insert(client.id)
        state.value.unflushed[ObjectIdentifier(link.channel)] = link.channel
    }

    private func disconnected(_ replica: ReplicaID, channel: any Channel) {
        guard let link = state.value.links[replica] else {
            return connect(to: replica, delayMilliseconds: 200)
        }
        guard link.channel === channel else { return }
        state.value.links[replica] = nil
        connect(to: replica, delayMilliseconds: 200)
    }

    /// True if every one of `replicas` has a connection now.
    func isConnected(to replicas: [ReplicaID]) -> Bool {
        replicas.allSatisfy { state.value.links[$0] != nil }
    }

    /// Writes `request` to `replicas`; the writes of one pass of the loop share a flush per connection.
    func send(_ request: Request, to replicas: [ReplicaID], readOnly: Bool = false) {
        let frame = ByteBufferAllocator().frame(readOnly ? .readOnlyRequest(request) : .request(request))
        for replica in replicas {
            guard let channel = state.value.links[replica]?.channel else { continue }
            channel.write(frame, promise: nil)
            state.value.unflushed[ObjectIdentifier(channel)] = channel
        }
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !state.value.flushScheduled, !state.value.unflushed.isEmpty else { return }
        state.value.flushScheduled = true
        loop.execute {
            self.state.value.flushScheduled = false
            let channels = self.state.value.unflushed
            self.state.value.unflushed.removeAll(keepingCapacity: true)
            for (_, channel) in channels { channel.flush() }
        }
    }

    // MARK: Replies and status

    func received(_ reply: Reply, from replica: ReplicaID) {
        // Replies the client no longer waits for are dropped before the MAC is checked.
        guard let member = state.value.members[reply.client], member.state.value.core.awaits(reply),
            member.keyring.verifyLinkAuthenticator(WireCodec.authenticatedBytes(of: reply), authenticator: reply.authenticator,
                                                   from: .replica(replica))
        else { return }
        member.received(reply)
    }

    func queryStatus(_ replica: ReplicaID, promise: EventLoopPromise<StatusReport>, timeoutMilliseconds: Int64) {
        guard !state.value.closed else { return promise.fail(ThemisClientError.closed) }
        guard let channel = state.value.links[replica]?.channel else {
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

/// Everything a session mutates, confined to its event loop.
struct SessionState {
    struct Link {
        let channel: any Channel
        let handshake: HandshakeCompleted
        /// Clients attached to this connection (they stay attached at the replica after leaving).
        var attached: Set<ClientID> = []
    }

    var members: [ClientID: ThemisClient] = [:]
    /// The keys the connections' handshakes prove (the first client's).
    var handshakeKeyring: Keyring?
    var links: [ReplicaID: Link] = [:]
    var unflushed: [ObjectIdentifier: any Channel] = [:]
    var flushScheduled = false
    var statusQueries: [UInt64: EventLoopPromise<StatusReport>] = [:]
    var nextStatusNonce: UInt64 = 1
    /// The session is on its loop's `SessionTicker`.
    var ticking = false
    var closed = false
}

/// Verifies replies from one replica and hands them to the session's client they are for.
final class ClientInboundHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    let session: ClientSession
    let replica: ReplicaID

    init(session: ClientSession, replica: ReplicaID) {
        self.session = session
        self.replica = replica
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? HandshakeCompleted {
            session.connected(replica, channel: context.channel, handshake: handshake)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch message.message {
        case .reply(let reply):
            // The reply must come from the replica at the other end of this link and carry its MAC.
            guard reply.replica == replica else { return }
            session.received(reply, from: replica)
        case .statusReport(let report):
            guard report.replica == replica else { return }
            session.receivedStatus(report)
        case .hello, .helloProof, .goodbye, .attachClient, .replica, .request, .readOnlyRequest, .statusQuery:
            context.close(promise: nil)  // a replica never sends these after the handshake
        }
    }
}
