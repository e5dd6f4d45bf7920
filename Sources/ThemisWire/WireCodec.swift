import NIOCore
import ThemisCore

/// The versioned binary codec for every message of the system (the layout is on `MessageKind`).
///
/// A payload is `version, kind, fields`; on a connection each payload travels in a frame: a 4-byte
/// big-endian length, then the payload. Decoding checks every length against `Limits` before reading
/// or allocating, and reports malformed input with a typed `WireError`, never a crash.
public enum WireCodec {
    /// The wire version this code speaks; a payload with another version is rejected.
    /// Version 2: replica messages travel as (protocol id, plug-in payload), `WireMessage.replica`.
    public static let version: UInt8 = 2
    /// `MessageKind.replica`, the kind byte of every protocol message (for inlinable code).
    @usableFromInline static let replicaKindByte: UInt8 = 0x40
    /// Size of a frame's length prefix.
    public static let frameHeaderBytes = 4
    /// Longest goodbye reason, in UTF-8 bytes.
    public static let goodbyeReasonBytesMax = 512
    /// Largest frame before the handshake completes (a Hello, a HelloProof with a signature of up to
    /// 512 bytes, or a goodbye): see `FrameDecoder.handshakeFrameBytesMax`.
    public static let handshakeFrameBytesMax = 4096
    /// Encodes one message as a frame: 4-byte big-endian length of the payload, then the payload.
    /// - Parameters:
    ///   - message: the message; its byte strings MUST each be shorter than 4 GiB.
    ///   - buffer: the frame is appended at its writer index.
    public static func encodeFrame(_ message: WireMessage, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: frameHeaderBytes + payloadByteCount(of: message))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let payloadStart = buffer.writerIndex
        writePayload(message, into: &buffer)
        // Patched afterwards rather than trusting the size estimate, so a frame is always exact.
        buffer.setInteger(wireLength(buffer.writerIndex - payloadStart), at: lengthIndex)
    }

    /// Encodes the payload only (no length prefix).
    /// - Parameters:
    ///   - message: the message; its byte strings MUST each be shorter than 4 GiB.
    ///   - buffer: the payload is appended at its writer index.
    public static func encode(_ message: WireMessage, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: payloadByteCount(of: message))
        writePayload(message, into: &buffer)
    }

    /// Decodes one whole payload (the bytes inside one frame).
    /// - Parameters:
    ///   - payload: exactly one payload. On success it is fully consumed; on error it is left unchanged.
    ///   - limits: the bounds every length and count is checked against before it is used.
    /// - Returns: the message. Requests are rebuilt (their digests recomputed); a pre-prepare keeps
    ///   the digest it carried, which the protocol core MUST check against its batch.
    /// - Throws: a `WireError` for any malformed payload, including `.trailingBytes` if bytes remain.
    public static func decode(_ payload: inout ByteBuffer, limits: Limits) throws(WireError) -> WireMessage {
        guard payload.readableBytes <= limits.frameBytesMax else {
            throw .frameTooLarge(length: payload.readableBytes, max: limits.frameBytesMax)
        }
        var reader = PayloadReader(buffer: payload, limits: limits)
        let message = try reader.readMessage()
        guard reader.buffer.readableBytes == 0 else {
            throw .trailingBytes(count: reader.buffer.readableBytes)
        }
        payload = reader.buffer
        return message
    }

    /// Encodes a protocol plug-in's message as a frame: length, version, `replica` kind, protocol id, then
    /// what `body` writes (the plug-in's kind byte, fields and authenticator), straight into `buffer`.
    /// - Parameter bodyBytes: the exact number of bytes `body` writes (the buffer grows once).
    @inlinable
    package static func encodeProtocolFrame(
        _ protocolID: ProtocolID, bodyBytes: Int, into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void
    ) {
        buffer.reserveCapacity(minimumWritableBytes: frameHeaderBytes + payloadHeaderBytes + 1 + bodyBytes)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let payloadStart = buffer.writerIndex
        buffer.writeInteger(version)
        buffer.writeInteger(replicaKindByte)
        buffer.writeInteger(protocolID.rawValue)
        body(&buffer)
        buffer.setInteger(wireLength(buffer.writerIndex - payloadStart), at: lengthIndex)
    }

    /// A length as its UInt32 wire field. Only local messages are encoded, and every decoded field
    /// came from a frame shorter than 4 GiB, so a longer field is a programming error.
    @inlinable
    package static func wireLength(_ count: Int) -> UInt32 {
        guard let length = UInt32(exactly: count) else {
            preconditionFailure("a field of \(count) bytes (or items) cannot be encoded: the wire limit is 4 GiB")
        }
        return length
    }
}
