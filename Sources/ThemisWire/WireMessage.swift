import NIOCore
import ThemisCore

/// Every message that crosses a connection, replica to replica or client to replica.
///
/// A connection opens with a handshake: each side sends a `hello`, then a `helloProof` over the
/// handshake transcript (see `WireCodec.handshakeTranscript(prover:verifier:)`). After that, replicas
/// exchange `replica` messages (a protocol plug-in's, as protocol id and payload) and clients send `request` and `statusQuery`. A side that closes the
/// connection because of an error first sends `goodbye` so that the peer can log a clear reason.
public enum WireMessage: Hashable, Sendable {
    /// First message of each side of a connection.
    case hello(Hello)
    /// Second message of each side: proof of identity over the handshake transcript.
    case helloProof(HelloProof)
    /// Sent before closing on an error. The reason is at most `WireCodec.goodbyeReasonBytesMax` UTF-8
    /// bytes: a longer one is truncated (at a scalar boundary) on encode and rejected on decode.
    case goodbye(reason: String)
    /// Client to replica, after the handshake: one more client id shares this connection (a process that
    /// runs many clients multiplexes them over one connection per replica). The proof is the attached
    /// client's `HelloProof` for a Hello naming it with the connection's own nonce, so it is bound to this
    /// connection and cannot be replayed on another.
    case attachClient(AttachClient)
    /// Replica to replica: a message of the protocol plug-in `ProtocolPayload.protocolID`, encoded by that
    /// plug-in (its kind, fields and the sender's authenticator). The framework never looks inside.
    case replica(ProtocolPayload)
    /// Client to replica; the client's authenticator is inside the request.
    case request(Request)
    /// Client to every replica: a request each replica answers from its application's current state,
    /// without ordering it (PBFT's read-only optimisation). Its authenticator is over the `readOnlyRequest`
    /// kind, so it can never be submitted as an ordered request. Answered with `reply`.
    case readOnlyRequest(Request)
    /// Replica to client; the replica's authenticator is inside the reply.
    case reply(Reply)
    /// Client to replica, answered directly (not ordered).
    case statusQuery(StatusQuery)
    /// Replica to client, the answer to a `statusQuery`.
    case statusReport(StatusReport)
}

/// A protocol plug-in's message as the wire carries it: the protocol id, then the plug-in's own bytes
/// (its kind byte, fields and authenticator; see the plug-in's codec). Decoding a frame yields the
/// payload as a slice of the frame (no copy); the plug-in decodes it.
public struct ProtocolPayload: Hashable, Sendable {
    public let protocolID: ProtocolID
    /// The plug-in's bytes, after the protocol id.
    public var bytes: ByteBuffer

    public init(protocolID: ProtocolID, bytes: ByteBuffer) {
        self.protocolID = protocolID
        self.bytes = bytes
    }
}
