import Logging
import NIOConcurrencyHelpers
import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisHybster
import ThemisPBFT
import ThemisTransport
import ThemisWire

/// The replica's per-connection handler, after the handshake: runs the `Ingress` (the sender is the
/// authenticated peer, every authenticator verifies) here on the connection's event loop, in parallel with
/// other connections, and hands the verified inputs of one read burst to the protocol driver together.
final class ReplicaInboundHandler<Plugin: ProtocolPlugin>: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    private let driver: ProtocolDriver<Plugin>
    private let ingress: Ingress<Plugin>
    private var pending: [DriverInput<Plugin.Core.Message>] = []
    private var peer: Principal?
    /// Further clients this (client) connection carries, each proved by `attachClient`.
    private var attached: Set<ClientID> = []
    /// The peer sent a payload that does not decode: the link is being closed and reads nothing more.
    private var closed = false
    /// Frames received from the peer (set once its handshake named it).
    private var framesIn: Tally?

    init(driver: ProtocolDriver<Plugin>, keyring: Keyring) {
        self.driver = driver
        self.ingress = Ingress(keyring: keyring, limits: driver.limits)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? HandshakeCompleted {
            peer = completed.peer
            // What we buffer for a peer that does not read is bounded by this high watermark (then its
            // frames are dropped, see ProtocolDriver.writeOutbox): a few frames for a replica, a few
            // replies for a client.
            let high = ProtocolDriverLimits.writeHighWatermark(for: completed.peer, limits: driver.limits)
            context.channel.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high)).whenFailure { _ in }
            driver.register(completed.peer, channel: context.channel)
            let traffic = try? context.pipeline.syncOperations.handler(type: TrafficCountingHandler.self)
            traffic?.attribute(to: completed.peer)
            framesIn = traffic?.traffic.framesIn
        } else if let attach = event as? ClientAttached, attached.insert(attach.client).inserted {
            driver.register(.client(attach.client), channel: context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let peer { driver.unregister(peer, channel: context.channel) }
        for client in attached { driver.unregister(.client(client), channel: context.channel) }
        context.fireChannelInactive()
    }

    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        framesIn?.add()
        let input = unwrapInboundIn(data)
        switch (input.peer, input.message) {
        case (.replica(let replica), .replica(let payload)):
            receive(payload, from: replica, context: context)
        case (.client(let client), .request(let request)):
            receive(request, from: client)
        case (.client(let client), .readOnlyRequest(let request)):
            driver.metrics.readOnlyReceived.add()
            switch ingress.admit(readOnly: request, from: client, attached: attached) {
            case .success(let verified): pending.append(.readOnly(verified))
            case .failure(let refusal): count(refusal)
            }
        case (.client, .statusQuery(let query)):
            driver.status(nonce: query.nonce, channel: context.channel)
        case (.replica, .statusQuery(let query)):
            driver.status(nonce: query.nonce, channel: context.channel)
        default:
            driver.metrics.connectionsRejected.add()
            let reason = "unexpected message from \(input.peer)"
            context.writeAndFlush(NIOAny(context.channel.allocator.frame(.goodbye(reason: reason))), promise: nil)
            context.close(promise: nil)
        }
    }

    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    func channelReadComplete(context: ChannelHandlerContext) {
        if !pending.isEmpty {
            if driver.deliver(pending) { driver.pause(context.channel) }
            pending.removeAll(keepingCapacity: true)
        }
        context.fireChannelReadComplete()
    }

    private func receive(_ payload: ProtocolPayload, from replica: ReplicaID, context: ChannelHandlerContext) {
        driver.metrics.messagesReceived.add()
        switch ingress.admit(payload, from: replica) {
        case .success(let verified):
            if verified.requestsUnverified { driver.metrics.unverifiedBatches.add() }
            pending.append(.message(verified))
        case .failure(.malformed(let error)):
            // As for a malformed frame: the peer is broken or lying; say why, close the link, read nothing more
            // from it (inputs of this read burst already verified are still handed over: they are authentic).
            closed = true
            driver.metrics.connectionsRejected.add()
            driver.logger.info("connection rejected", metadata: ["peer": "\(replica)", "reason": "malformed message: \(error)"])
            context.writeAndFlush(NIOAny(context.channel.allocator.frame(.goodbye(reason: "malformed message: \(error)"))), promise: nil)
            context.close(promise: nil)
        case .failure(let refusal):
            count(refusal)
            if refusal == .authenticationFailed {
                driver.logger.debug("authentication failed", metadata: ["from": "\(replica)"])
            }
        }
    }

    private func receive(_ request: Request, from client: ClientID) {
        driver.metrics.requestsReceived.add()
        switch ingress.admit(request, from: client, attached: attached) {
        case .success(let verified): pending.append(.request(verified))
        case .failure(let refusal): count(refusal)
        }
    }

    private func count(_ refusal: IngressRefusal) {
        switch refusal {
        case .forgedSender: driver.metrics.forgedSenders.add()
        case .authenticationFailed: driver.metrics.authenticationFailures.add()
        case .malformed: driver.metrics.connectionsRejected.add()
        }
    }
}
