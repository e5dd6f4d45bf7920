import NIOCore
import ThemisCore

/// The versioned binary codec for every message of the system (the layout is on `MessageKind`).
///
/// A payload is `version, kind, fields`; on a connection each payload travels in a frame: a 4-byte
/// big-endian length, then the payload. Decoding checks every length against `Limits` before reading
/// or allocating, and reports malformed input with a typed `WireError`, never a crash.
public enum WireCodec {
    /// The wire version this code speaks; a payload with another version is rejected.
    public static let version: UInt8 = 1
    /// Size of a frame's length prefix.
    public static let frameHeaderBytes = 4
    /// Longest goodbye reason, in UTF-8 bytes.
    public static let goodbyeReasonBytesMax = 512
    /// Largest frame before the handshake completes (a Hello, a HelloProof with a signature of up to
    /// 512 bytes, or a goodbye): see `FrameDecoder.handshakeFrameBytesMax`.
    public static let handshakeFrameBytesMax = 4096
    /// Most entries in one quorum certificate on the wire: the CHECKPOINT messages proving a
    /// VIEW-CHANGE's stable checkpoint, the PREPAREs of one prepared certificate, the VIEW-CHANGEs of
    /// a NEW-VIEW. Each comes from a distinct replica and `ClusterConfiguration` caps the replica
    /// count at 1024, so a longer list is malformed.
    public static let certificateEntriesMax = 1024
    /// Most prepared certificates in one VIEW-CHANGE, and most PRE-PREPAREs in one NEW-VIEW: one per
    /// sequence number above the stable checkpoint. A transport bound only, twice the default
    /// watermark window (2000); the protocol core checks the sequence numbers against its own window.
    public static let preparedCertificatesMax = 4096

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

    /// A length as its UInt32 wire field. Only local messages are encoded, and every decoded field
    /// came from a frame shorter than 4 GiB, so a longer field is a programming error.
    static func wireLength(_ count: Int) -> UInt32 {
        guard let length = UInt32(exactly: count) else {
            preconditionFailure("a field of \(count) bytes (or items) cannot be encoded: the wire limit is 4 GiB")
        }
        return length
    }
}
