// Proves that the size the encoder reserves up front is exact for every message kind, so encoding
// grows the buffer once; it compares the internal size computation with the bytes actually written.
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
@testable import ThemisWire

@Suite struct EncodedSizeTests {
    @Test(arguments: Fixtures.samples + [
        .goodbye(reason: String(repeating: "€", count: 200)),
        .pbft(.viewChange(Fixtures.viewChange(proof: 5, certificates: 7, prepares: 3)), authenticator: [UInt8](repeating: 1, count: 300)),
        .pbft(.newView(Fixtures.newView(viewChanges: 4, prePrepares: 6)), authenticator: [UInt8](repeating: 2, count: 65)),
        .pbft(.newView(Fixtures.newView(viewChanges: 2, prePrepares: 5, prePrepareAuthenticator: [UInt8](repeating: 3, count: 64))), authenticator: []),
        .pbft(.stateChunk(Fixtures.stateChunk(bytes: Limits().stateChunkBytes)), authenticator: [UInt8](repeating: 4, count: 256)),
        .pbft(.stateChunk(Fixtures.stateChunk(bytes: 1)), authenticator: []),
        .pbft(.committedBatches(Fixtures.committedBatches(count: Limits().committedBatchesPerMessageMax, requestsPerBatch: 5)), authenticator: [5]),
        .pbft(.committedBatches(Fixtures.committedBatches(count: 3, requestsPerBatch: 0)), authenticator: []),
    ])
    func predictedSizeIsExact(message: WireMessage) {
        #expect(WireCodec.payloadByteCount(of: message) == Fixtures.bytes(message).count)
        var frame = ByteBuffer()
        WireCodec.encodeFrame(message, into: &frame)
        #expect(frame.readableBytes == WireCodec.frameHeaderBytes + WireCodec.payloadByteCount(of: message))
    }
}
