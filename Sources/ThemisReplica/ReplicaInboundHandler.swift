import Logging
import NIOConcurrencyHelpers
import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

/// The replica's per-connection handler, after the handshake: runs the `Ingress` (the sender is the
/// authenticated peer, every authenticator verifies) here on the connection's event loop, in parallel with
/// other connections, and hands the verified inputs of one read burst to the protocol driver together.
final class ReplicaInboundHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    private let driver: ProtocolDriver
    private let ingress: Ingress
    private var pending: [DriverInput] = []
    private var peer: Principal?
    /// Further clients this (client) connection carries, each proved by `attachClient`.
    private var attached: Set<ClientID> = []

    init(driver: ProtocolDriver, keyring: Keyring) {
        self.driver = driver
        self.ingress = Ingress(keyring: keyring)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? HandshakeCompleted {
            peer = completed.peer
            // What we buffer for a peer that does not read is bounded by this high watermark (then its
            // frames are dropped, see ProtocolDriver.writeOutbox): a few frames for a replica, a few
            // replies for a client.
            let high = Self.writeHighWatermark(for: completed.peer, limits: driver.limits)
            context.channel.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high)).whenFailure { _ in }
            driver.register(completed.peer, channel: context.channel)
        } else if let attach = event as? ClientAttached, attached.insert(attach.client).inserted {
            driver.register(.client(attach.client), channel: context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The write-buffer high watermark of a link: a few frames for a replica, a few replies for a client.
    static func writeHighWatermark(for peer: Principal, limits: Limits) -> Int {
        switch peer {
        case .replica: 2 * limits.frameBytesMax + (1 << 20)
        case .client: max(64 * 1024, 4 * (limits.resultBytesMax + 1024))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let peer { driver.unregister(peer, channel: context.channel) }
        for client in attached { driver.unregister(.client(client), channel: context.channel) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let input = unwrapInboundIn(data)
        switch (input.peer, input.message) {
        case (.replica(let replica), .pbft(let message, let tag)):
            receive(message, authenticator: tag, from: replica)
        case (.client(let client), .request(let request)):
            receive(request, from: client)
        case (.client, .statusQuery(let query)):
            driver.status(nonce: query.nonce, channel: context.channel)
        case (.replica, .statusQuery(let query)):
            driver.status(nonce: query.nonce, channel: context.channel)
        default:
            driver.counters.withLockedValue { $0.connectionsRejected += 1 }
            let reason = "unexpected message from \(input.peer)"
            context.writeAndFlush(NIOAny(context.channel.allocator.frame(.goodbye(reason: reason))), promise: nil)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !pending.isEmpty {
            if driver.deliver(pending) { driver.pause(context.channel) }
            pending.removeAll(keepingCapacity: true)
        }
        context.fireChannelReadComplete()
    }

    private func receive(_ message: PBFTMessage, authenticator: [UInt8], from replica: ReplicaID) {
        driver.counters.withLockedValue { $0.messagesReceived += 1 }
        switch ingress.admit(message, authenticator: authenticator, from: replica) {
        case .success(let verified):
            if verified.requestsUnverified { driver.counters.withLockedValue { $0.unverifiedBatches += 1 } }
            pending.append(.message(verified))
        case .failure(let refusal):
            count(refusal)
            if refusal == .authenticationFailed {
                driver.logger.debug("authentication failed", metadata: ["from": "\(replica)", "kind": "\(message.kindName)"])
            }
        }
    }

    private func receive(_ request: Request, from client: ClientID) {
        driver.counters.withLockedValue { $0.requestsReceived += 1 }
        switch ingress.admit(request, from: client, attached: attached) {
        case .success(let verified): pending.append(.request(verified))
        case .failure(let refusal): count(refusal)
        }
    }

    private func count(_ refusal: IngressRefusal) {
        switch refusal {
        case .forgedSender: driver.counters.withLockedValue { $0.forgedSenders += 1 }
        case .authenticationFailed: driver.counters.withLockedValue { $0.authenticationFailures += 1 }
        }
    }
}
