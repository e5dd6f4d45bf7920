import NIOCore
import ThemisCore
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
}

/// Fired down the pipeline when the peer ends the connection with a reason, or we reject it.
public struct ConnectionRejected: Sendable, Error, CustomStringConvertible {
    public let reason: String
    /// True if the peer sent the reason; false if we rejected the peer.
    public let byPeer: Bool
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
