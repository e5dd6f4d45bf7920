import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

extension ChannelPipeline.SynchronousOperations {
    /// Adds the frame decoder and the handshake handler, the common front of every Themis connection.
    /// - Parameter clientFrameBytesMax: a replica's limit on frames from a client after the handshake
    ///   (`MessageBounds.clientFrameBytesMax`); nil: `limits.frameBytesMax` for every peer.
    public func addThemisFront(
        keyring: Keyring, clusterTag: UInt64, limits: Limits, clientFrameBytesMax: Int? = nil,
        admit: @escaping @Sendable (Principal) -> Bool,
        onRejection: @escaping @Sendable (ConnectionRejected) -> Void
    ) throws {
        try addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: limits.frameBytesMax, clientFrameBytesMax: clientFrameBytesMax)))
        try addHandler(HandshakeHandler(keyring: keyring, clusterTag: clusterTag, limits: limits, admit: admit, onRejection: onRejection))
    }
}
