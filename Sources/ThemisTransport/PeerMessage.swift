import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// A decoded message from a peer whose identity the handshake proved.
/// The message's own authenticator is NOT checked yet: that is the role handler's job.
public struct PeerMessage: Sendable {
    public let peer: Principal
    public let message: WireMessage

    public init(peer: Principal, message: WireMessage) {
        self.peer = peer
        self.message = message
    }
}

/// Fired down the pipeline (as a user inbound event) once the peer proved its identity.
public struct HandshakeCompleted: Sendable {
    public let peer: Principal
    /// Both Hellos of the handshake: a client attaching more ids proves them over the same nonces.
    public let ownHello: Hello
    public let peerHello: Hello
}

/// Fired down the pipeline when a client connection proved one more client id (`WireMessage.attachClient`).
public struct ClientAttached: Sendable {
    public let client: ClientID
}

extension Keyring {
    /// The proof that attaches this keyring's client to a connection whose handshake produced `handshake`.
    public func attachProof(_ handshake: HandshakeCompleted) -> AttachClient? {
        guard case .client(let id) = me else { return nil }
        let claimed = Hello(principal: me, nonce: handshake.ownHello.nonce, clusterTag: handshake.ownHello.clusterTag)
        let transcript = WireCodec.attachTranscript(prover: claimed, verifier: handshake.peerHello)
        return AttachClient(client: id, proof: handshakeProof(transcript: transcript, peer: handshake.peerHello.principal))
    }
}

/// An error that a handler in front of the handshake (TLS) raises for the peer's fault: the handshake handler
/// rejects the connection with `rejectionKind` (reported and counted like its own rejections) instead of
/// closing it as an I/O error.
public protocol PeerFault: Error, CustomStringConvertible {
    var rejectionKind: String { get }
}

/// Fired down the pipeline when the peer ends the connection with a reason, or we reject it.
public struct ConnectionRejected: Sendable, Error, CustomStringConvertible {
    public let reason: String
    /// True if the peer sent the reason; false if we rejected the peer.
    public let byPeer: Bool
    /// A stable label for counters: timeout, malformed, unexpected-message, other-cluster, not-accepted,
    /// proof-failed, attach-refused, goodbye (the peer closed with a reason), or a `PeerFault`'s kind (tls).
    public let kind: String

    public init(reason: String, byPeer: Bool, kind: String) {
        self.reason = reason
        self.byPeer = byPeer
        self.kind = kind
    }

    public var description: String { byPeer ? "peer closed the connection: \(reason)" : "rejected peer: \(reason)" }
}

extension ByteBufferAllocator {
    /// Encodes one message as a length-prefixed frame.
    public func frame(_ message: WireMessage) -> ByteBuffer {
        var buffer = self.buffer(capacity: 128)
        WireCodec.encodeFrame(message, into: &buffer)
        return buffer
    }
}
