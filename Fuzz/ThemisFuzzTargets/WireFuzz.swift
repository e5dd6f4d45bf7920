import NIOCore
import ThemisCore
import ThemisHybster
import ThemisPBFT
import ThemisWire

/// Limits the decoders run under: the defaults, and small ones so that every bound is reachable by
/// inputs of a few hundred bytes (the first input byte picks one).
enum FuzzLimits {
    static let standard = Limits()
    static let small: Limits = {
        var limits = Limits()
        limits.frameBytesMax = 4096
        limits.operationBytesMax = 64
        limits.resultBytesMax = 64
        limits.authenticatorBytesMax = 128
        limits.batchRequestsMax = 4
        limits.committedBatchesPerMessageMax = 2
        limits.stateChunkBytes = 64
        limits.stateBytesMax = 1024
        return limits
    }()

    static func pick(_ byte: UInt8) -> Limits { byte & 1 == 0 ? standard : small }
}

/// One frame payload: it either fails to decode with a `WireError`, or decodes to a message whose
/// encoding is exactly the input (the encoding is canonical, so no two byte strings mean the same
/// message and authenticated bytes cannot be confused), and whose authenticated bytes can be computed.
enum MessageFuzz {
    static func run(_ input: [UInt8]) throws(FuzzFailure) {
        guard let first = input.first else { return }
        try check(ByteBuffer(bytes: input.dropFirst()), limits: FuzzLimits.pick(first))
    }

    static func check(_ payload: ByteBuffer, limits: Limits) throws(FuzzFailure) {
        var buffer = payload
        guard let message = try? WireCodec.decode(&buffer, limits: limits) else { return }
        var encoded = ByteBuffer()
        WireCodec.encode(message, into: &encoded)
        guard encoded == payload else {
            throw FuzzFailure("a message (kind byte \(payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) ?? 0)) re-encodes to \(encoded.readableBytes) bytes that differ from its \(payload.readableBytes)-byte input")
        }
        switch message {
        case .replica(let payload) where payload.protocolID == HybsterCodec.protocolID:
            // The Hybster plug-in's payload: the same properties.
            guard let (inner, authenticator) = try? HybsterCodec.decode(payload, limits: limits) else { return }
            guard HybsterCodec.wireMessage(inner, authenticator: authenticator) == message else {
                throw FuzzFailure("a Hybster \(inner.kindName) re-encodes to bytes that differ from its input")
            }
            _ = HybsterCodec.authenticatedBytes(of: inner)
        case .replica(let payload):
            // The PBFT plug-in's payload: it decodes or fails with a `WireError`, and re-encodes exactly.
            guard let (inner, authenticator) = try? PBFTCodec.decode(payload, limits: limits) else { return }
            guard PBFTCodec.wireMessage(inner, authenticator: authenticator) == message else {
                throw FuzzFailure("a PBFT \(inner.kindName) re-encodes to bytes that differ from its input")
            }
            _ = WireCodec.authenticatedBytes(of: inner)
            if case .prePrepare(let prePrepare) = inner {
                for request in prePrepare.requests { _ = WireCodec.authenticatedBytes(of: request) }
            }
        case .request(let request):
            _ = WireCodec.authenticatedBytes(of: request)
        case .reply(let reply):
            _ = WireCodec.authenticatedBytes(of: reply)
        default:
            break
        }
    }
}

/// A byte stream from a peer: split into frames (the length prefix checked against the frame limit),
/// and every frame decoded as `MessageFuzz` does.
enum FrameFuzz {
    static func run(_ input: [UInt8]) throws(FuzzFailure) {
        guard let first = input.first else { return }
        let limits = FuzzLimits.pick(first)
        // Bits 1-2 of the first byte shrink the frame limit, so too-large frames are reachable.
        let frameLimit = [limits.frameBytesMax, 1024, 64, 8][Int(first >> 1) & 3]
        var stream = ByteBuffer(bytes: input.dropFirst())
        while true {
            let before = stream.readerIndex
            let frame: ByteBuffer?
            do {
                frame = try FrameDecoder.nextFrame(from: &stream, maxFrameBytes: frameLimit)
            } catch {
                guard stream.readerIndex == before else { throw FuzzFailure("a rejected frame moved the reader index") }
                return
            }
            guard let frame else {
                guard stream.readerIndex == before else { throw FuzzFailure("an incomplete frame moved the reader index") }
                return
            }
            guard frame.readableBytes > 0, frame.readableBytes <= frameLimit else {
                throw FuzzFailure("a frame of \(frame.readableBytes) bytes passed a limit of \(frameLimit)")
            }
            try MessageFuzz.check(frame, limits: limits)
        }
    }
}
