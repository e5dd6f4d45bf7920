import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// Decodes frames and runs the identity handshake; afterwards forwards every message as a `PeerMessage`.
///
/// Handshake: each side sends `Hello(principal, fresh nonce, cluster tag)`; on receiving the other's
/// Hello it sends a `HelloProof`, a MAC with the pairwise link key (derived from both sides' X25519
/// keys in cluster.json) over both Hellos. A client's connection may then carry more client ids, each
/// attached with `attachClient` and a proof over `WireCodec.attachTranscript` (`ClientAttached` is fired
/// for each valid one). A peer that names a principal it may not be, belongs to another cluster or cannot
/// prove its identity gets a `goodbye` with the reason and is disconnected.
/// Malformed frames also close the connection; every rejection is reported to `onRejection`.
public final class HandshakeHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = PeerMessage

    enum State {
        case awaitingHello
        case awaitingProof(peerHello: Hello)
        case established(peer: Principal, peerHello: Hello)
        case closed
    }

    private let keyring: Keyring
    private let limits: Limits
    private let ownHello: Hello
    private let admit: @Sendable (Principal) -> Bool
    private let onRejection: @Sendable (ConnectionRejected) -> Void
    private let handshakeTimeout: TimeAmount
    private var state = State.awaitingHello
    private var timeoutTask: Scheduled<Void>?

    /// - Parameters:
    ///   - admit: which principals this side accepts on this connection.
    ///   - onRejection: called for every connection closed because of a protocol violation (for counting).
    ///   - handshakeTimeout: a peer that has not proved its identity by then is disconnected, so that a
    ///     stranger cannot hold connections open without a handshake.
    public init(
        keyring: Keyring, clusterTag: UInt64, limits: Limits,
        admit: @escaping @Sendable (Principal) -> Bool,
        onRejection: @escaping @Sendable (ConnectionRejected) -> Void = { _ in },
        handshakeTimeout: TimeAmount = .seconds(10)
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.keyring = keyring
        self.limits = limits
        self.admit = admit
        self.onRejection = onRejection
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.ownHello = Hello(principal: keyring.me, nonce: nonce, clusterTag: clusterTag)
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.frame(.hello(ownHello))), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutTask = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            let (handler, context) = bound.value
            guard case .established = handler.state else {
                return handler.reject(context: context, reason: "no handshake within \(handler.handshakeTimeout.nanoseconds / 1_000_000) ms", kind: "timeout")
            }
        }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        timeoutTask = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        let message: WireMessage
        do {
            message = try WireCodec.decode(&frame, limits: limits)
        } catch {
            reject(context: context, reason: "malformed message: \(error)", kind: "malformed")
            return
        }
        switch state {
        case .awaitingHello:
            receiveHello(message, context: context)
        case .awaitingProof(let peerHello):
            receiveProof(message, peerHello: peerHello, context: context)
        case .established(let peer, let peerHello):
            receiveEstablished(message, peer: peer, peerHello: peerHello, context: context)
        case .closed:
            return
        }
    }

    private func receiveHello(_ message: WireMessage, context: ChannelHandlerContext) {
        guard case .hello(let hello) = message else {
            if case .goodbye(let reason) = message { return peerSaidGoodbye(reason, context: context) }
            return reject(context: context, reason: "expected Hello", kind: "unexpected-message")
        }
        guard hello.clusterTag == ownHello.clusterTag else {
            return reject(context: context, reason: "\(hello.principal) belongs to another cluster configuration", kind: "other-cluster")
        }
        guard hello.principal != keyring.me, admit(hello.principal) else {
            return reject(context: context, reason: "\(hello.principal) is not accepted on this connection", kind: "not-accepted")
        }
        let transcript = WireCodec.handshakeTranscript(prover: ownHello, verifier: hello)
        let proof = keyring.handshakeProof(transcript: transcript, peer: hello.principal)
        context.writeAndFlush(NIOAny(context.channel.allocator.frame(.helloProof(HelloProof(proof: proof)))), promise: nil)
        state = .awaitingProof(peerHello: hello)
    }

    private func receiveProof(_ message: WireMessage, peerHello: Hello, context: ChannelHandlerContext) {
        guard case .helloProof(let proof) = message else {
            if case .goodbye(let reason) = message { return peerSaidGoodbye(reason, context: context) }
            return reject(context: context, reason: "expected HelloProof", kind: "unexpected-message")
        }
        let transcript = WireCodec.handshakeTranscript(prover: peerHello, verifier: ownHello)
        guard keyring.verifyHandshakeProof(proof.proof, transcript: transcript, from: peerHello.principal) else {
            return reject(context: context, reason: "\(peerHello.principal) could not prove its identity", kind: "proof-failed")
        }
        state = .established(peer: peerHello.principal, peerHello: peerHello)
        timeoutTask?.cancel()
        timeoutTask = nil
        context.fireUserInboundEventTriggered(HandshakeCompleted(peer: peerHello.principal, ownHello: ownHello, peerHello: peerHello))
    }

    private func receiveEstablished(
        _ message: WireMessage, peer: Principal, peerHello: Hello, context: ChannelHandlerContext
    ) {
        switch message {
        case .hello, .helloProof:
            reject(context: context, reason: "handshake message after the handshake", kind: "unexpected-message")
        case .attachClient(let attach):
            // Only a client's connection carries more clients; each proves itself as in a handshake, with
            // this connection's nonces (so the proof cannot be replayed on another connection).
            guard case .client = peer else { return reject(context: context, reason: "\(peer) may not attach clients", kind: "attach-refused") }
            let principal = Principal.client(attach.client)
            guard principal != peer, admit(principal) else {
                return reject(context: context, reason: "\(principal) is not accepted on this connection", kind: "not-accepted")
            }
            let claimed = Hello(principal: principal, nonce: peerHello.nonce, clusterTag: peerHello.clusterTag)
            let transcript = WireCodec.attachTranscript(prover: claimed, verifier: ownHello)
            guard keyring.verifyHandshakeProof(attach.proof, transcript: transcript, from: principal) else {
                return reject(context: context, reason: "\(principal) could not prove its identity", kind: "proof-failed")
            }
            // Fired for every valid proof; an id attached again (a client that rejoined its session) changes
            // nothing at the handler that keeps the set.
            context.fireUserInboundEventTriggered(ClientAttached(client: attach.client))
        case .goodbye(let reason):
            peerSaidGoodbye(reason, context: context)
        case .replica, .request, .readOnlyRequest, .reply, .statusQuery, .statusReport:
            context.fireChannelRead(wrapInboundOut(PeerMessage(peer: peer, message: message)))
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is WireError {
            // Frame decoder errors (oversize or empty frames) are the peer's fault.
            reject(context: context, reason: "\(error)", kind: "malformed")
        } else if let fault = error as? any PeerFault {
            // A failed TLS handshake (a plaintext peer, a certificate refused on either side).
            reject(context: context, reason: fault.description, kind: fault.rejectionKind)
        } else {
            // I/O errors (connection reset, ...) end the connection without blaming the peer.
            state = .closed
            context.close(promise: nil)
        }
    }

    /// Sends the reason to the peer, closes, and reports the rejection.
    private func reject(context: ChannelHandlerContext, reason: String, kind: String) {
        guard !isClosed else { return }
        state = .closed
        let rejection = ConnectionRejected(reason: reason, byPeer: false, kind: kind)
        onRejection(rejection)
        context.fireUserInboundEventTriggered(rejection)
        context.writeAndFlush(NIOAny(context.channel.allocator.frame(.goodbye(reason: reason))), promise: nil)
        context.close(promise: nil)
    }

    private func peerSaidGoodbye(_ reason: String, context: ChannelHandlerContext) {
        state = .closed
        context.fireUserInboundEventTriggered(ConnectionRejected(reason: reason, byPeer: true, kind: "goodbye"))
        context.close(promise: nil)
    }

    private var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }
}
