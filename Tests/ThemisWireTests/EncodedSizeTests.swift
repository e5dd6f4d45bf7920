// Proves that the size the encoder reserves up front is exact for every message kind, so encoding
// grows the buffer once; it compares the internal size computation with the bytes actually written.
import NIOCore
import Testing
import ThemisCore
@testable import ThemisWire

@Suite struct EncodedSizeTests {
    @Test(arguments: Fixtures.samples + [.goodbye(reason: String(repeating: "€", count: 200))])
    func predictedSizeIsExact(message: WireMessage) {
        #expect(WireCodec.payloadByteCount(of: message) == Fixtures.bytes(message).count)
        var frame = ByteBuffer()
        WireCodec.encodeFrame(message, into: &frame)
        #expect(frame.readableBytes == WireCodec.frameHeaderBytes + WireCodec.payloadByteCount(of: message))
    }
}
