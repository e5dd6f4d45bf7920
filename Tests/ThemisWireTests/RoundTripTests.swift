// Proves that every message kind survives encode then decode unchanged (including empty and
// maximum-size fields and a full batch), that frames carry payloads exactly, and pins the byte layout
// with golden encodings so that an accidental format change breaks the build.
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct RoundTripTests {
    @Test(arguments: Fixtures.samples)
    func everyKindRoundTrips(message: WireMessage) throws {
        var payload = Fixtures.payload(message)
        let decoded = try WireCodec.decode(&payload, limits: Fixtures.limits)
        #expect(decoded == message)
        #expect(payload.readableBytes == 0)
    }

    @Test func maximumSizeFieldsRoundTrip() throws {
        let limits = Fixtures.limits
        let authenticator = [UInt8](repeating: 0xAB, count: limits.authenticatorBytesMax)
        let bigRequest = Request(
            client: ClientID(1), timestamp: Timestamp(UInt64.max),
            operation: [UInt8](repeating: 0x5A, count: limits.operationBytesMax), authenticator: authenticator
        )
        let batch = (0..<UInt32(limits.batchRequestsMax)).map { Fixtures.request($0) }
        let messages: [WireMessage] = [
            .request(bigRequest),
            .pbft(.request(bigRequest, relayedBy: ReplicaID(UInt32.max)), authenticator: authenticator),
            .pbft(.prePrepare(PrePrepare(view: View(UInt64.max), sequence: SequenceNumber(UInt64.max), requests: batch, sender: ReplicaID(0))), authenticator: authenticator),
            .reply(Reply(view: View(1), timestamp: Timestamp(2), client: ClientID(3), replica: ReplicaID(4), result: [UInt8](repeating: 1, count: limits.resultBytesMax), authenticator: authenticator)),
            .helloProof(HelloProof(proof: authenticator)),
            .goodbye(reason: String(repeating: "x", count: WireCodec.goodbyeReasonBytesMax)),
        ]
        for message in messages {
            var payload = Fixtures.payload(message)
            #expect(try WireCodec.decode(&payload, limits: limits) == message)
        }
    }

    @Test func decodedPrePrepareKeepsTheDigestItCarried() throws {
        // The core, not the codec, checks the batch digest: a wrong one must arrive as sent.
        let forged = PrePrepare(view: View(1), sequence: SequenceNumber(2), digest: Fixtures.digest(9), requests: [Fixtures.request(1)], sender: ReplicaID(1))
        let decoded = try Fixtures.decode(Fixtures.bytes(.pbft(.prePrepare(forged), authenticator: [])))
        guard let inner = decoded.pbft?.message, case .prePrepare(let prePrepare) = inner else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(prePrepare.digest == Fixtures.digest(9))
        #expect(prePrepare.digest != Request.batchDigest(prePrepare.requests))
        #expect(prePrepare.requests[0].digest == Fixtures.request(1).digest)
    }

    @Test func longGoodbyeReasonIsTruncatedAtAScalarBoundary() throws {
        let ascii = String(repeating: "a", count: 600)
        #expect(try Fixtures.decode(Fixtures.bytes(.goodbye(reason: ascii))) == .goodbye(reason: String(repeating: "a", count: 512)))
        // "€" is 3 UTF-8 bytes: 512 bytes would split the 171st, so 170 of them (510 bytes) are sent.
        let euros = String(repeating: "€", count: 200)
        #expect(try Fixtures.decode(Fixtures.bytes(.goodbye(reason: euros))) == .goodbye(reason: String(repeating: "€", count: 170)))
    }

    @Test func framesCarryPayloadsBackToBack() throws {
        var stream = ByteBuffer(bytes: [0xEE])  // bytes already in the buffer stay untouched
        stream.moveReaderIndex(forwardBy: 1)
        for message in Fixtures.samples {
            WireCodec.encodeFrame(message, into: &stream)
        }
        var decoded: [WireMessage] = []
        while var frame = try FrameDecoder.nextFrame(from: &stream, maxFrameBytes: Fixtures.limits.frameBytesMax) {
            decoded.append(try WireCodec.decode(&frame, limits: Fixtures.limits))
        }
        #expect(decoded == Fixtures.samples)
        #expect(stream.readableBytes == 0)
    }

    @Test func frameIsLengthPrefixThenPayload() {
        var frame = ByteBuffer()
        WireCodec.encodeFrame(.statusQuery(StatusQuery(nonce: 5)), into: &frame)
        #expect(Array(frame.readableBytesView) == [0, 0, 0, 10, 2, 0x30, 0, 0, 0, 0, 0, 0, 0, 5])
    }

    @Test func goldenPrepareEncoding() {
        let expected: [UInt8] = [2, 0x40, 1, 0x12] + Fixtures.bigEndian(UInt64(3)) + Fixtures.bigEndian(UInt64(41))
            + Fixtures.digest(1).bytes + Fixtures.bigEndian(UInt32(1)) + [0, 0, 0, 2, 0xAA, 0xBB]
        #expect(Fixtures.bytes(.pbft(.prepare(Fixtures.prepare), authenticator: [0xAA, 0xBB])) == expected)
    }

    @Test func goldenHelloEncoding() {
        let expected: [UInt8] = [2, 0x01, 1] + Fixtures.bigEndian(UInt32(77)) + [0, 0, 0, 32] + Fixtures.nonce(2)
            + Fixtures.bigEndian(UInt64(0xC0FFEE))
        #expect(Fixtures.bytes(.hello(Fixtures.clientHello)) == expected)
    }

    @Test func goldenRequestEncoding() {
        let request = Request(client: ClientID(5), timestamp: Timestamp(6), operation: [7], authenticator: [8, 9])
        let expected: [UInt8] = [2, 0x20] + Fixtures.bigEndian(UInt32(5)) + Fixtures.bigEndian(UInt64(6))
            + [0, 0, 0, 1, 7] + [0, 0, 0, 2, 8, 9]
        #expect(Fixtures.bytes(.request(request)) == expected)
    }
}
