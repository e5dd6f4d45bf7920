import NIOCore

/// Splits an inbound byte stream into frames: a 4-byte big-endian payload length, then the payload.
///
/// Use it as `ByteToMessageHandler(FrameDecoder(maxFrameBytes: limits.frameBytesMax))`; each frame's
/// payload goes on as a `ByteBuffer` for `WireCodec.decode(_:limits:)`. A length prefix of 0 or
/// above `maxFrameBytes` throws a `WireError` as soon as the 4 prefix bytes arrive (nothing more is
/// buffered); `ByteToMessageHandler` then fires `errorCaught`, and a later handler MUST close the
/// connection (after sending a `goodbye` if it wants). At end of stream, an incomplete frame is left
/// over, which `ByteToMessageHandler` reports as `ByteToMessageDecoderError.leftoverDataWhenDone`.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// The largest payload accepted.
    public let maxFrameBytes: Int
    /// The largest payload accepted for the first `handshakeFrames` frames of a connection: before the
    /// peer has proved who it is, it may send only a Hello and a HelloProof (or a goodbye), all small, so
    /// a stranger cannot make us buffer a frame of `maxFrameBytes`.
    public let handshakeFrameBytesMax: Int
    /// The largest payload accepted after the handshake from a peer whose Hello names a client (a client
    /// sends requests, status queries and attaches, never a frame of replica messages), so a client
    /// connection cannot make us buffer `maxFrameBytes`. Nil: `maxFrameBytes` for every peer.
    public let clientFrameBytesMax: Int?
    /// Frames of the handshake: the peer's Hello and HelloProof.
    public static let handshakeFrames = 2
    private var framesDecoded = 0
    private var peerIsClient = false

    public init(maxFrameBytes: Int, handshakeFrameBytesMax: Int = WireCodec.handshakeFrameBytesMax, clientFrameBytesMax: Int? = nil) {
        let handshakeLimit = min(handshakeFrameBytesMax, maxFrameBytes)
        self.maxFrameBytes = maxFrameBytes
        self.handshakeFrameBytesMax = handshakeLimit
        self.clientFrameBytesMax = clientFrameBytesMax.map { min(max($0, handshakeLimit), maxFrameBytes) }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let limit = framesDecoded < Self.handshakeFrames
            ? handshakeFrameBytesMax
            : (peerIsClient ? clientFrameBytesMax ?? maxFrameBytes : maxFrameBytes)
        guard let frame = try Self.nextFrame(from: &buffer, maxFrameBytes: limit) else {
            return .needMoreData
        }
        if framesDecoded == 0 {
            // A Hello: version, kind 0x01, principal kind (1 = client). The handshake handler checks the
            // rest and closes the connection unless the peer proves to be that principal.
            peerIsClient = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == MessageKind.hello.rawValue
                && frame.getInteger(at: frame.readerIndex + 2, as: UInt8.self) == 1
        }
        framesDecoded += 1
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// Takes the next whole frame's payload off the front of `buffer`, if it has fully arrived.
    /// - Parameters:
    ///   - buffer: the bytes received so far; on success the reader index moves past the frame,
    ///     otherwise it is unchanged.
    ///   - maxFrameBytes: the largest payload accepted.
    /// - Returns: the payload (a slice of `buffer`, no copy), or nil if more bytes are needed.
    /// - Throws: `WireError.emptyFrame` for a length of 0, `WireError.frameTooLarge` for a length
    ///   above `maxFrameBytes`; both as soon as the length prefix is readable.
    public static func nextFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws(WireError) -> ByteBuffer? {
        guard let rawLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let length = Int(clamping: rawLength)
        guard length != 0 else { throw .emptyFrame }
        guard length <= maxFrameBytes else { throw .frameTooLarge(length: length, max: maxFrameBytes) }
        // The prefix is readable, so readerIndex + 4 is inside the buffer; getSlice checks the rest.
        guard let frame = buffer.getSlice(at: buffer.readerIndex + WireCodec.frameHeaderBytes, length: length) else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: WireCodec.frameHeaderBytes + length)
        return frame
    }
}
