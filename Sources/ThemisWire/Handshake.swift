import ThemisCore

/// The first message of each side of a connection: who I claim to be, a fresh nonce, and which
/// cluster I belong to.
public struct Hello: Hashable, Sendable {
    /// The length of every nonce.
    public static let nonceByteCount = 32

    /// The identity the sender claims; its `HelloProof` must prove it.
    public let principal: Principal
    /// Exactly `nonceByteCount` fresh bytes, so that a proof cannot be replayed on another connection.
    public let nonce: [UInt8]
    /// Identifies the cluster configuration, so that a peer from another cluster is rejected early.
    public let clusterTag: UInt64

    /// - Parameter nonce: MUST be exactly `Hello.nonceByteCount` bytes (the decoder checks this for
    ///   received hellos; a local caller passing another length is a programming error and traps).
    public init(principal: Principal, nonce: [UInt8], clusterTag: UInt64) {
        precondition(
            nonce.count == Hello.nonceByteCount,
            "a Hello nonce must be \(Hello.nonceByteCount) bytes, got \(nonce.count)"
        )
        self.principal = principal
        self.nonce = nonce
        self.clusterTag = clusterTag
    }
}

/// After the handshake, a client-side connection may carry more client ids: each one is attached with a
/// proof made with that client's keys (see `WireMessage.attachClient`).
public struct AttachClient: Hashable, Sendable {
    public let client: ClientID
    public let proof: [UInt8]

    public init(client: ClientID, proof: [UInt8]) {
        self.client = client
        self.proof = proof
    }
}

/// The second message of each side of a connection: an authenticator over
/// `WireCodec.handshakeTranscript(prover:verifier:)`, at most `Limits.authenticatorBytesMax` bytes.
public struct HelloProof: Hashable, Sendable {
    public let proof: [UInt8]

    public init(proof: [UInt8]) {
        self.proof = proof
    }
}
