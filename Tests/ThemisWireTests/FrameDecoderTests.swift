// Proves that the frame splitter behind FrameDecoder cuts a byte stream into exactly the encoded
// payloads however the stream is chunked (one byte at a time, random chunks, many frames per chunk),
// waits without consuming while a frame is incomplete, and rejects empty and oversize length prefixes
// as soon as the prefix arrives. It drives `FrameDecoder.nextFrame` the way ByteToMessageHandler does.
import NIOCore
import Testing
import ThemisCore
import ThemisSimulator
import ThemisWire

@Suite struct FrameDecoderTests {
    let maxFrameBytes = Fixtures.limits.frameBytesMax

    /// The frames of every sample, back to back.
    func stream() -> [UInt8] {
        var buffer = ByteBuffer()
        for message in Fixtures.samples {
            WireCodec.encodeFrame(message, into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }

    /// Feeds `chunks` one by one into an accumulation buffer, taking every whole frame after each.
    func split(_ chunks: [ArraySlice<UInt8>]) throws -> [WireMessage] {
        var accumulated = ByteBuffer()
        var messages: [WireMessage] = []
        for chunk in chunks {
            accumulated.writeBytes(chunk)
            while var frame = try FrameDecoder.nextFrame(from: &accumulated, maxFrameBytes: maxFrameBytes) {
                messages.append(try WireCodec.decode(&frame, limits: Fixtures.limits))
            }
        }
        #expect(accumulated.readableBytes == 0)
        return messages
    }

    @Test func manyFramesInOneChunk() throws {
        #expect(try split([stream()[...]]) == Fixtures.samples)
    }

    @Test func framesSplitOneByteAtATime() throws {
        let bytes = stream()
        #expect(try split(bytes.indices.map { bytes[$0...$0] }) == Fixtures.samples)
    }

    @Test func framesSplitIntoRandomChunks() throws {
        var random = SplitMix64(seed: 7)
        let bytes = stream()
        for _ in 0..<50 {
            var chunks: [ArraySlice<UInt8>] = []
            var start = 0
            while start < bytes.count {
                let end = Swift.min(bytes.count, start + Int.random(in: 1...40, using: &random))
                chunks.append(bytes[start..<end])
                start = end
            }
            #expect(try split(chunks) == Fixtures.samples)
        }
    }

    @Test func incompleteFrameIsLeftUntouched() throws {
        var frame = ByteBuffer()
        WireCodec.encodeFrame(.statusQuery(StatusQuery(nonce: 3)), into: &frame)
        let bytes = Array(frame.readableBytesView)
        for length in 0..<bytes.count {
            var partial = ByteBuffer(bytes: bytes.prefix(length))
            #expect(try FrameDecoder.nextFrame(from: &partial, maxFrameBytes: maxFrameBytes) == nil)
            #expect(partial.readerIndex == 0)
            #expect(partial.readableBytes == length)
        }
    }

    @Test func frameOfExactlyTheMaximumIsAccepted() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 8] + [UInt8](repeating: 1, count: 8) + [0])
        let frame = try FrameDecoder.nextFrame(from: &buffer, maxFrameBytes: 8)
        #expect(frame?.readableBytes == 8)
        #expect(buffer.readableBytes == 1)
    }

    @Test func oversizeLengthPrefixThrowsBeforeThePayloadArrives() {
        for length: UInt32 in [9, 1 << 31, UInt32.max] {
            var buffer = ByteBuffer(bytes: Fixtures.bigEndian(length))
            #expect(throws: WireError.frameTooLarge(length: Int(length), max: 8)) {
                try FrameDecoder.nextFrame(from: &buffer, maxFrameBytes: 8)
            }
        }
    }

    @Test func emptyFrameThrows() {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 0, 1, 2])
        #expect(throws: WireError.emptyFrame) { try FrameDecoder.nextFrame(from: &buffer, maxFrameBytes: 8) }
    }

    @Test func decoderKeepsItsLimit() {
        #expect(FrameDecoder(maxFrameBytes: 123).maxFrameBytes == 123)
    }
}
